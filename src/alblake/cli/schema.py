"""``alblake schema``: print what ``alblake.schema`` generates, or rewrite / check the checked-in copies.

    alblake schema ddl | raw-ddl | glue-columns | raw-glue-columns | regex
    alblake schema --write [ROOT]   # make generate: rewrite sql/ddl/*.sql and template.yaml's generated blocks
    alblake schema --check [ROOT]   # exit 1 naming the generated files that are stale
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alblake import schema, schema_render
from alblake.cli.common import EXIT_FAILED, EXIT_USAGE, print_error

ARTEFACTS: dict[str, tuple[str, Callable[[], str]]] = {
    "ddl": ("Athena DDL of the curated table (sql/ddl/alb_logs.sql)", schema_render.curated_ddl),
    "raw-ddl": ("Athena DDL of the raw RegexSerDe table (sql/ddl/alb_logs_raw.sql)", schema_render.raw_ddl),
    "glue-columns": (
        "the curated table's Glue columns as YAML (template.yaml CuratedTable)",
        lambda: "\n".join(schema_render.yaml_columns(schema.glue_columns())) + "\n",
    ),
    "raw-glue-columns": (
        "the raw table's Glue columns as YAML (template.yaml RawTable)",
        lambda: "\n".join(schema_render.yaml_columns(schema.raw_glue_columns())) + "\n",
    ),
    "regex": ("the raw table's RegexSerDe input.regex", lambda: schema.RAW_LOG_REGEX + "\n"),
    "rollup-ddl": ("Athena DDL of the rollup table (sql/ddl/alb_rollup_1m.sql)", schema_render.rollup_ddl),
    "rollup-glue-columns": (
        "the rollup table's Glue columns as YAML (template.yaml RollupTable)",
        lambda: "\n".join(schema_render.yaml_columns(schema.rollup_glue_columns())) + "\n",
    ),
    "routes-sql": (
        "requests per route template of the curated table (sql/rollup/routes.sql)",
        schema_render.routes_sql,
    ),
}


def _run(args: argparse.Namespace) -> int:
    if args.write is not None or args.check is not None:
        if args.artefact:
            print_error("give an artefact to print, or --write/--check, not both")
            return EXIT_USAGE
        root = Path(args.write if args.write is not None else args.check)
        try:
            changed = schema_render.write_generated(root) if args.write is not None else schema_render.stale_files(root)
        except OSError as error:  # (a template without its markers is an InputError: alblake.cli says so)
            print_error(str(error))
            return EXIT_USAGE
        verb = "rewrote" if args.write is not None else "stale"
        for path in changed:
            print(f"{verb} {path}")
        return EXIT_FAILED if changed and args.check is not None else 0
    if not args.artefact:
        print_error("name an artefact (" + ", ".join(ARTEFACTS) + ") or --write/--check")
        return EXIT_USAGE
    sys.stdout.write(ARTEFACTS[args.artefact][1]())
    return 0


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "artefact",
        nargs="?",
        choices=list(ARTEFACTS),
        help="; ".join(f"{name}: {text}" for name, (text, _) in ARTEFACTS.items()),
    )
    modes = parser.add_mutually_exclusive_group()
    # developer tools (make generate, the schema test): not in the users' --help
    modes.add_argument("--write", nargs="?", const=".", metavar="ROOT", help=argparse.SUPPRESS)
    modes.add_argument("--check", nargs="?", const=".", metavar="ROOT", help=argparse.SUPPRESS)
    parser.set_defaults(func=_run)


def register(subparsers: Any) -> None:
    """Adds ``schema`` to the ``alblake`` command's subparsers."""
    _configure(
        subparsers.add_parser(
            "schema",
            help="print the Athena DDL, Glue columns and raw-log regex generated from alblake's one schema",
            description="Print what alblake.schema generates: the Athena DDL of the curated and raw tables, their "
            "Glue columns, the raw table's regex.",
            epilog="examples:\n  alblake schema ddl > alb_logs.sql\n  alblake schema regex",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )

