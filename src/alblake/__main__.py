"""The ``alblake`` console script (also ``python -m alblake``).

A command that may ingest in parallel starts the pool's fork server before anything else, so the server imports
alblake on one core while this process imports it on another (``alblake.pool``); every other command goes
straight to ``alblake.cli``. This module imports nothing heavy.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from alblake.pool import default_jobs, start_pool_server

POOL_COMMANDS = ("ingest", "replay")  # the commands with --jobs


def may_use_a_pool(argv: Sequence[str]) -> bool:
    """Whether the command line may run a process pool: a command with ``--jobs``, not ``--jobs 1``, on a machine
    with more than one core (a guess before the arguments are parsed; a wrong one costs a core ~0.4 s)."""
    if not argv or argv[0] not in POOL_COMMANDS or default_jobs() < 2:
        return False
    jobs = None
    for position, argument in enumerate(argv):
        if argument == "--jobs" and position + 1 < len(argv):
            jobs = argv[position + 1]
        elif argument.startswith("--jobs="):
            jobs = argument.partition("=")[2]
    return jobs is None or jobs.strip() != "1"


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if may_use_a_pool(arguments):
        start_pool_server()
    from alblake.cli import main as run_command

    return run_command(arguments)


if __name__ == "__main__":
    sys.exit(main())
