"""The ``alblake`` console script (also ``python -m alblake``).

``alblake ingest`` of many objects starts the pool's fork server before anything else, so the server imports
alblake on one core while this process imports it on another (``alblake.ingest.pool``). Whether a pool will run is only
known once the inputs are selected, after those imports; so this looks ahead cheaply (``may_use_a_pool``): the
command's paths and ``--jobs``, read with the ingest command's own option names, and a count of the local files
the paths name, stopped as soon as the answer is known. Every other command goes straight to ``alblake.cli``.
This module imports nothing heavy.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from collections.abc import Iterator, Sequence
from typing import NoReturn

from alblake.errors import AlblakeError
from alblake.ingest.pool import default_jobs, start_pool_server, worth_a_pool
from alblake.keys import LOG_SUFFIXES
from alblake.s3_urls import is_s3_url

# ``alblake ingest``'s options (``alblake.cli``; a test keeps the two alike), to tell its paths from option values
INGEST_VALUE_OPTIONS = ("--lake", "--glue-database", "--since", "--until", "--elb", "--jobs")
INGEST_FLAG_OPTIONS = (("--batch",), ("--no-batch",), ("--quiet",), ("-h", "--help"))


class _ArgumentsNotUnderstoodError(AlblakeError):
    pass


class _QuietParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # never prints or exits: the CLI will say what is wrong
        raise _ArgumentsNotUnderstoodError(message)


def ingest_lookahead_parser() -> argparse.ArgumentParser:
    parser = _QuietParser(add_help=False)
    parser.add_argument("paths", nargs="*")
    for option in INGEST_VALUE_OPTIONS:
        parser.add_argument(option)
    for flags in INGEST_FLAG_OPTIONS:
        parser.add_argument(*flags, action="store_true")
    return parser


def may_use_a_pool(argv: Sequence[str]) -> bool:
    """A guess, before the arguments are parsed and the inputs selected, of whether this command runs a process
    pool (``alblake.ingest.runner.ingest_objects``): ``ingest`` on more than one core, ``--jobs`` not 1, and its paths
    name enough local files for ``worth_a_pool`` (or any number, with ``--jobs N``), or an ``s3://`` prefix. A
    wrong guess costs a core for ~0.4 s (or the overlap), never a wrong result."""
    if len(argv) < 2 or argv[0] != "ingest" or default_jobs() < 2:
        return False
    try:
        arguments = ingest_lookahead_parser().parse_args(argv[1:])
        jobs = None if arguments.jobs is None else int(arguments.jobs)
    except (_ArgumentsNotUnderstoodError, ValueError):
        return False
    if arguments.help or (jobs is not None and jobs < 2):
        return False
    if any(is_s3_url(path) for path in arguments.paths):
        return True  # listing a bucket takes long enough to hide the start, and history is many objects
    for objects, size in _count_local(arguments.paths):  # stops counting as soon as the answer is yes
        if (jobs is not None and objects > 1) or worth_a_pool(objects, size):
            return True
    return False


def _count_local(paths: Sequence[str]) -> Iterator[tuple[int, int]]:
    """Running (files, bytes) of the files the paths name as ``alblake.ingest.selection.expand_paths`` finds them: files
    named or matched, and ``*.log`` / ``*.log.gz`` under directories."""
    objects = size = 0
    for text in paths:
        for match in glob.glob(text, recursive=True) if any(c in text for c in "*?[") else [text]:  # noqa: PTH207
            if os.path.isdir(match):  # noqa: PTH112
                for folder, _, names in os.walk(match):
                    for name in names:
                        if name.endswith(LOG_SUFFIXES):
                            objects, size = objects + 1, size + _size(os.path.join(folder, name))  # noqa: PTH118
                            yield objects, size
            elif os.path.isfile(match):  # noqa: PTH113
                objects, size = objects + 1, size + _size(match)
                yield objects, size


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size  # noqa: PTH116
    except OSError:
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if may_use_a_pool(arguments):
        start_pool_server()
    from alblake.cli import main as run_command

    return run_command(arguments)


if __name__ == "__main__":
    sys.exit(main())
