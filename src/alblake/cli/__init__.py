"""Command line: ``alblake sample``, ``alblake ingest`` (+ the commands of the other ``alblake.cli`` modules)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from alblake.cli import history, lake, lifecycle, schema
from alblake.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    add_dates,
    add_elb,
    add_jobs,
    add_lake,
    exit_status,
    object_filter,
    print_error,
)
from alblake.cli.progress import progress_callback
from alblake.display import printable
from alblake.errors import AlblakeError
from alblake.ingest.planning import BATCH_MIN_OBJECTS
from alblake.ingest.runner import IngestSummary, ingest_paths
from alblake.locations import open_lake_at
from alblake.sample import write_sample_logs


def _cmd_sample(args: argparse.Namespace) -> int:
    written = write_sample_logs(args.out, files=args.files, lines_per_file=args.lines, seed=args.seed)
    print(f"wrote {len(written)} log files ({args.files * args.lines} lines) under {printable(str(args.out))}")
    return 0


def _format_summary(summary: IngestSummary) -> str:
    seconds = max(summary.seconds, 1e-9)
    return "\n".join(
        [
            f"files        {summary.files} converted, {len(summary.failures)} failed"
            + (f", {summary.skipped} left out (not ALB access logs or outside the filter)" if summary.skipped else ""),
            f"lines        {summary.lines}",
            f"rows         {summary.rows}",
            f"quarantined  {summary.quarantined}",
            *([f"erased       {summary.erased} (the lake's erasures and expired hours)"] if summary.erased else []),
            f"partitions   {len(summary.partitions)}",
            f"throughput   {summary.lines / seconds:,.0f} lines/s, {summary.text_bytes / seconds / 1e6:,.1f} MB/s "
            f"of log text ({summary.seconds:.2f} s)",
        ]
    )


def _cmd_ingest(args: argparse.Namespace) -> int:
    open_lake_at(args.lake, glue_database=args.glue_database)  # a bad location is refused before any work
    selected = object_filter(args)
    summary = ingest_paths(
        args.paths,
        args.lake,
        jobs=args.jobs,
        glue_database=args.glue_database,
        object_filter=selected,
        progress=progress_callback(args.quiet),
        batch=args.batch,
    )
    if summary.files == 0 and not summary.failures:
        what = "objects match the filter" if not selected.is_empty else ".log or .log.gz files found"
        print_error(f"no {what} in the given paths")
        return EXIT_USAGE
    print(_format_summary(summary))
    for path, reason in summary.failures:
        print_error(f"{path}: {reason}")
    for name, lines in summary.not_alb_logs:
        print_error(
            f"{name}: does not look like an ALB access log: none of its {lines:,} lines is a valid entry "
            "(all quarantined)"
        )
    return EXIT_FAILED if summary.failures or summary.not_alb_logs else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alblake", description="ALB access logs -> partitioned Parquet lake")
    commands = parser.add_subparsers(dest="command", required=True)

    sample = commands.add_parser("sample", help="write realistic synthetic ALB log files")
    sample.add_argument("--out", type=Path, required=True, help="directory to write into")
    sample.add_argument("--files", type=int, default=12)
    sample.add_argument("--lines", type=int, default=2000, help="lines per file")
    sample.add_argument("--seed", type=int, default=7)
    sample.set_defaults(func=_cmd_sample)

    ingest = commands.add_parser("ingest", help="convert .log/.log.gz files or S3 objects into a Parquet lake")
    ingest.add_argument("paths", nargs="+", help="files, globs, directories or s3://bucket/prefix")
    add_lake(ingest)
    ingest.add_argument(
        "--glue-database", help="register the partitions in this database's alb_logs table (an s3:// lake)"
    )
    add_dates(ingest)
    add_elb(ingest)
    add_jobs(ingest)
    ingest.add_argument(
        "--batch",
        action=argparse.BooleanOptionalAction,
        help="small objects (up to 256 KiB) in batches: one file per partition-hour for many objects (default: "
        f"when there are at least {BATCH_MIN_OBJECTS}); --no-batch writes one file per object and hour",
    )
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")
    ingest.set_defaults(func=_cmd_ingest)
    lake.register(commands)
    lifecycle.register(commands)

    schema.register(commands)
    history.register(commands)
    try:
        from alblake.cli import analysis
    except ImportError:  # analysis extras (duckdb) not installed
        pass
    else:
        analysis.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except AlblakeError as error:  # every error alblake raises on purpose: one line, no traceback
        print_error(str(error))
        return exit_status(error)
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as other command line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code


if __name__ == "__main__":
    sys.exit(main())
