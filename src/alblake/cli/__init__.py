"""Command line: ``alblake sample``, ``alblake ingest`` (+ the commands of the other ``alblake.cli`` modules)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alblake import __version__
from alblake.cli import history, lake, lifecycle, ops, schema
from alblake.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    add_dates,
    add_elb,
    add_jobs,
    add_lake,
    examples,
    exit_status,
    glue_database_of,
    lake_of,
    object_filter,
    positive,
    print_error,
    settings_of,
)
from alblake.display import printable, unknown_name_message
from alblake.errors import AlblakeError
from alblake.ingest.planning import BATCH_MIN_OBJECTS
from alblake.locations import check_lake_reachable, open_lake_at
from alblake.settings import aws_environment

if TYPE_CHECKING:
    from alblake.ingest.runner import IngestSummary

# Commands import what only they need when they run (the ingest engine, the sample writer), so that reading
# commands start without them.


def _cmd_sample(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.out.is_dir():
        print_error(f"--out {args.out} is a file: name a directory to write the log files into")
        return EXIT_USAGE
    from alblake.sample import write_sample_logs

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
    location, glue_database = lake_of(args), glue_database_of(args)
    open_lake_at(location, glue_database=glue_database)  # a bad location is refused before any work
    check_lake_reachable(location)  # a missing bucket: one message, not one per object
    selected = object_filter(args)
    from alblake.cli.progress import progress_callback
    from alblake.ingest.runner import ingest_paths

    summary = ingest_paths(
        args.paths,
        location,
        jobs=args.jobs,
        glue_database=glue_database,
        object_filter=selected,
        progress=progress_callback(args.quiet),
        batch=args.batch,
    )
    if summary.files == 0 and not summary.failures:
        what = "objects match the filter" if not selected.is_empty else ".log or .log.gz files found"
        print_error(f"no {what} in the given paths")
        return EXIT_USAGE
    if summary.files == 0 and not summary.not_alb_logs:  # nothing converted: the reasons alone, no zero summary
        for path, reason in summary.failures:
            print_error(f"{path}: {reason}")
        missing = all(reason in {"no such file", "no file matches this pattern"} for _, reason in summary.failures)
        return EXIT_USAGE if missing else EXIT_FAILED
    print(_format_summary(summary))
    for path, reason in summary.failures:
        print_error(f"{path}: {reason}")
    for name, lines in summary.not_alb_logs:
        print_error(
            f"{name}: does not look like an ALB access log: none of its {lines:,} lines is a valid entry "
            "(all quarantined)"
        )
    return EXIT_FAILED if summary.failures or summary.not_alb_logs else 0


WORKFLOW = (
    "sample", "ingest", "status", "query", "sql", "triage", "report", "files", "shell", "compact", "repair", "replay",
    "backfill", "redrive", "catalog", "doctor", "erase", "expire", "privacy", "schema",
)
DESCRIPTION = """ALB access logs -> a partitioned Parquet lake you can query (locally with DuckDB, on AWS with Athena).

Settings: --lake, else ALBLAKE_LAKE, else lake in ./alblake.toml or ~/.config/alblake/alblake.toml, else the
outputs of --stack NAME (likewise the Glue database and Athena workgroup). Region and profile: AWS_REGION,
AWS_PROFILE (or region/profile in alblake.toml)."""
EPILOG = """first steps:
  alblake sample --out logs/                      # realistic synthetic logs (or your own *.log.gz / s3:// prefix)
  alblake ingest logs/ --lake lake/               # -> lake/alb_logs/elb_name=.../day=.../hour=.../*.parquet
  export ALBLAKE_LAKE=lake/                       # no more --lake
  alblake query error_rate_by_hour --since 6h     # a named query (alblake query --list)
  alblake sql "SELECT count(*) FROM alb_logs WHERE elb_status_code >= 500" --since 30m
  alblake report --out report.html                # the HTML dashboard

shell completion: eval "$(register-python-argcomplete alblake)" (bash/zsh; see README)"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alblake", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"alblake {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    registrars: dict[str, Callable[[Any], None]] = {
        "sample": _register_sample,
        "ingest": _register_ingest,
        **lake.registrars(),
        **history.registrars(),
        **ops.registrars(),
        **lifecycle.registrars(),
        "schema": schema.register,
    }
    try:
        from alblake.cli import analysis, triage
    except ImportError:  # analysis extras (duckdb) not installed
        pass
    else:
        registrars.update(
            query=analysis.register_query, sql=analysis.register_sql, report=analysis.register_report,
            files=analysis.register_files, shell=analysis.register_shell, triage=triage.register,
        )
    for name in [n for n in WORKFLOW if n in registrars] + [n for n in registrars if n not in WORKFLOW]:
        registrars[name](commands)
    # command modules that register several commands at once follow here, one line each: module.register(commands)
    return parser


def _register_sample(commands: Any) -> None:
    sample = commands.add_parser(
        "sample", help="write realistic synthetic ALB log files (to try alblake without AWS)",
        description="Write ALB access log files as AWS names and formats them: three load balancers, IPv6 "
        "clients, errors, slow targets and a few malformed lines.",
        **examples("alblake sample --out logs/", "alblake sample --out logs/ --files 48 --lines 5000 --seed 1"),
    )
    sample.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory to write into (created)")
    sample.add_argument("--files", type=positive, default=12, metavar="N", help="log files to write (default 12)")
    sample.add_argument("--lines", type=positive, default=2000, metavar="N", help="lines per file (default 2000)")
    sample.add_argument(
        "--seed", type=int, default=7, metavar="N", help="random seed: the same seed writes the same files (default 7)"
    )
    sample.set_defaults(func=_cmd_sample)


def _register_ingest(commands: Any) -> None:
    ingest = commands.add_parser(
        "ingest", help="convert .log/.log.gz files or S3 objects into the Parquet lake",
        description="Convert ALB access logs into the lake: every line becomes a row or a quarantined line. "
        "Running it again on the same objects replaces their rows, never adds.",
        **examples(
            "alblake ingest logs/ --lake lake/",
            "alblake ingest 'logs/**/*.log.gz' --lake lake/ --since 2026-11-24T08:00 --until 2026-11-24T10:00",
            "alblake ingest s3://my-alb-logs/AWSLogs/ --lake s3://my-lake/x --glue-database prod_alblake",
            "alblake ingest s3://my-alb-logs/AWSLogs/ --stack prod --elb web-prod --since 2d",
        ),
    )
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="files, globs, directories or s3://bucket/prefix")
    add_lake(ingest)
    ingest.add_argument(
        "--glue-database", metavar="NAME",
        help="register the partitions in this database's alb_logs table (an s3:// lake; default with --stack: "
        "its GlueDatabaseName)",
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


def _suggest_command(argv: Sequence[str], parser: argparse.ArgumentParser) -> str | None:
    """'did you mean' for a mistyped command (argparse's own message lists the choices only)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is None or first in WORKFLOW:
        return None
    choices = list(parser._subparsers._group_actions[0].choices or ())  # type: ignore[union-attr]
    if first in choices:
        return None
    return unknown_name_message("command", first, choices) + " ('alblake --help' lists them)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    _complete(parser)
    arguments = list(sys.argv[1:] if argv is None else argv)
    suggestion = _suggest_command(arguments[:1], parser) if arguments and not arguments[0].startswith("-") else None
    if suggestion is not None:
        print_error(suggestion)
        return EXIT_USAGE
    args = parser.parse_args(arguments)
    try:
        with aws_environment(settings_of(args)):
            code: int = args.func(args)
    except AlblakeError as error:  # every error alblake raises on purpose: one line, no traceback
        print_error(str(error))
        return exit_status(error)
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as other command line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print_error("interrupted")
        return 130
    return code


def _complete(parser: argparse.ArgumentParser) -> None:
    """Shell completion (argcomplete): answers and exits only when the shell asks for completions."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


if __name__ == "__main__":
    sys.exit(main())
