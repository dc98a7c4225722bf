"""Results as text: an aligned table for people, CSV, JSON and JSON lines for programs (``--format``).

Every format is safe to print or to open: table cells show control characters as escapes (``printable``);
JSON escapes them (and the bidi and line-separator characters a terminal would act on); CSV keeps values as
they are, except that a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
``'`` in front unless ``raw`` (a spreadsheet would run it as a formula; OWASP's advice on CSV injection).
Timestamps are ISO 8601 in UTC with ``Z``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa

from alblake.display import fmt, iso_z, printable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def format_table(table: pa.Table) -> str:
    """The table as aligned text: a header, a rule, one line per row; numbers right-aligned.

    Cells are terminal-safe: control characters from the logs are shown as escapes (``printable``), so a
    value can neither start a new row nor send escape sequences to the terminal.
    """
    columns = table.column_names
    rows = table.to_pylist()
    cells = [[printable(fmt(c, row[c])) for c in columns] for row in rows]
    numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) for t in table.schema.types]
    count = f"({len(rows)} row{'s' if len(rows) != 1 else ''})"
    return aligned([printable(c) for c in columns], cells, numeric) + "\n" + count


def aligned(header: Sequence[str], cells: Sequence[Sequence[str]], numeric: Sequence[bool]) -> str:
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(header)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in cells)])


def plain(value: Any) -> Any:
    """A value as JSON has it: timestamps ISO 8601 with Z, NaN as null, decimals as numbers."""
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def json_text(value: Any) -> str:
    """Compact JSON; every character a terminal would act on is a ``\\uXXXX`` escape (still valid JSON)."""
    text = json.dumps(plain(value), ensure_ascii=False, separators=(", ", ": "))
    return "".join(f"\\u{ord(c):04x}" if printable(c) != c else c for c in text)


def csv_cell(value: Any, *, raw: bool) -> str:
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    text = str(value)
    if not raw and isinstance(value, str) and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def csv_field(text: str) -> str:
    """One RFC 4180 field: quoted when it holds a comma, a quote, CR or LF (so a value stays one field)."""
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\r\n') else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]], *, raw: bool = False) -> str:
    """RFC 4180 CSV with LF line ends (values with newlines or quotes stay in one field)."""
    lines = [",".join(csv_field(str(h)) for h in header)]
    lines += [",".join(csv_field(csv_cell(v, raw=raw)) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def format_csv(table: pa.Table, *, raw: bool = False) -> str:
    columns = table.column_names
    return csv_text(columns, ([row[c] for c in columns] for row in table.to_pylist()), raw=raw)


def render(table: pa.Table, form: str, *, raw: bool = False) -> str:
    """The table in ``form`` (table, csv, json, jsonl), ending with a newline (nothing for jsonl of no rows)."""
    if form == "csv":
        return format_csv(table, raw=raw)
    if form == "json":
        return json_text(table.to_pylist()) + "\n"
    if form == "jsonl":
        return "".join(json_text(row) + "\n" for row in table.to_pylist())
    return format_table(table) + "\n"
