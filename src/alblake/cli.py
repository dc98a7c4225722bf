"""Command line: ``alblake sample``, ``alblake ingest`` (+ analysis commands from ``cli_analysis``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from alblake import cli_lake
from alblake.ingest import IngestSummary, ingest_paths, progress_bar
from alblake.sample import write_sample_logs


def _cmd_sample(args: argparse.Namespace) -> int:
    written = write_sample_logs(args.out, files=args.files, lines_per_file=args.lines, seed=args.seed)
    print(f"wrote {len(written)} log files ({args.files * args.lines} lines) under {args.out}")
    return 0


def _format_summary(summary: IngestSummary) -> str:
    seconds = max(summary.seconds, 1e-9)
    return "\n".join(
        [
            f"files        {summary.files} converted, {len(summary.failures)} failed",
            f"lines        {summary.lines}",
            f"rows         {summary.rows}",
            f"quarantined  {summary.quarantined}",
            f"partitions   {len(summary.partitions)}",
            f"throughput   {summary.lines / seconds:,.0f} lines/s, {summary.text_bytes / seconds / 1e6:,.1f} MB/s "
            f"of log text ({summary.seconds:.2f} s)",
        ]
    )


def _cmd_ingest(args: argparse.Namespace) -> int:
    show_progress = sys.stderr.isatty() and not args.quiet
    summary = ingest_paths(args.paths, args.lake, progress=progress_bar if show_progress else None)
    if summary.files == 0 and not summary.failures:
        print("error: no .log or .log.gz files found in the given paths", file=sys.stderr)
        return 2
    print(_format_summary(summary))
    for path, reason in summary.failures:
        print(f"error: {path}: {reason}", file=sys.stderr)
    return 1 if summary.failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alblake", description="ALB access logs -> partitioned Parquet lake")
    commands = parser.add_subparsers(dest="command", required=True)

    sample = commands.add_parser("sample", help="write realistic synthetic ALB log files")
    sample.add_argument("--out", type=Path, required=True, help="directory to write into")
    sample.add_argument("--files", type=int, default=12)
    sample.add_argument("--lines", type=int, default=2000, help="lines per file")
    sample.add_argument("--seed", type=int, default=7)
    sample.set_defaults(func=_cmd_sample)

    ingest = commands.add_parser("ingest", help="convert .log/.log.gz files into a Parquet lake")
    ingest.add_argument("paths", nargs="+", help="files, globs or directories")
    ingest.add_argument("--lake", type=Path, required=True, help="lake directory")
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")
    ingest.set_defaults(func=_cmd_ingest)
    cli_lake.register(commands)

    try:
        from alblake import cli_analysis
    except ImportError:  # analysis extras (duckdb) not installed
        pass
    else:
        cli_analysis.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
