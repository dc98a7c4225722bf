"""Command line: ``alblake sample``, ``alblake ingest`` (+ the commands of the other ``alblake.cli`` modules)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from alblake import cli_lake
from alblake.cli import history as cli_history
from alblake.cli import schema as cli_schema
from alblake.cli.progress import describe_failure, progress_bar
from alblake.display import printable
from alblake.ingest.filters import ObjectFilter, parse_day
from alblake.ingest.planning import BATCH_MIN_OBJECTS
from alblake.ingest.runner import IngestSummary, ingest_paths
from alblake.locations import LakeLocationError, open_lake_at
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
            f"partitions   {len(summary.partitions)}",
            f"throughput   {summary.lines / seconds:,.0f} lines/s, {summary.text_bytes / seconds / 1e6:,.1f} MB/s "
            f"of log text ({summary.seconds:.2f} s)",
        ]
    )


def _cmd_ingest(args: argparse.Namespace) -> int:
    try:
        open_lake_at(args.lake, glue_database=args.glue_database)  # a bad location is refused before any work
    except LakeLocationError as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return 2
    show_progress = sys.stderr.isatty() and not args.quiet
    object_filter = ObjectFilter(since=args.since, until=args.until, elb=args.elb)
    summary = ingest_paths(
        args.paths,
        args.lake,
        jobs=args.jobs,
        glue_database=args.glue_database,
        object_filter=object_filter,
        progress=progress_bar if show_progress else None,
        batch=args.batch,
    )
    if summary.files == 0 and not summary.failures:
        what = "objects match the filter" if not object_filter.is_empty else ".log or .log.gz files found"
        print(f"error: no {what} in the given paths", file=sys.stderr)
        return 2
    print(_format_summary(summary))
    for path, reason in summary.failures:
        print(describe_failure(path, reason), file=sys.stderr)
    for name, lines in summary.not_alb_logs:
        print(
            f"error: {printable(name)}: does not look like an ALB access log: none of its {lines:,} lines is a "
            "valid entry (all quarantined)",
            file=sys.stderr,
        )
    return 1 if summary.failures or summary.not_alb_logs else 0


def _day(text: str) -> date:
    try:
        return parse_day(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
    ingest.add_argument("--lake", required=True, help="lake directory or s3://bucket/prefix")
    ingest.add_argument(
        "--glue-database", help="register the partitions in this database's alb_logs table (an s3:// lake)"
    )
    ingest.add_argument("--since", type=_day, help="only objects delivered on or after this UTC day (YYYY-MM-DD)")
    ingest.add_argument("--until", type=_day, help="only objects delivered on or before this UTC day")
    ingest.add_argument("--elb", help="only objects of this load balancer (name, or app/NAME/ID)")
    ingest.add_argument(
        "--jobs", type=int, help="processes (default: one per core when there are many objects or bytes)"
    )
    ingest.add_argument(
        "--batch",
        action=argparse.BooleanOptionalAction,
        help="small objects (up to 256 KiB) in batches: one file per partition-hour for many objects (default: "
        f"when there are at least {BATCH_MIN_OBJECTS}); --no-batch writes one file per object and hour",
    )
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")
    ingest.set_defaults(func=_cmd_ingest)
    cli_lake.register(commands)

    cli_schema.register(commands)
    cli_history.register(commands)
    try:
        from alblake.cli import analysis as cli_analysis
    except ImportError:  # analysis extras (duckdb) not installed
        pass
    else:
        cli_analysis.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as other command line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code


if __name__ == "__main__":
    sys.exit(main())
