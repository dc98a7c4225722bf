"""Text for people: cell formatting shared by the text table and the HTML report, and terminal-safe strings.

Values in the lake come from the logs (URLs, user agents, ``\\xHH`` escapes decoded by the parser), so a
string printed to a terminal may carry control characters: ESC sequences that retitle the terminal or
move the cursor, newlines that forge table rows, bidi overrides that reorder what is shown.
:func:`printable` makes such characters visible as escapes; everything else is left as it is.
"""

from __future__ import annotations

import difflib
import math
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

# Format characters that change how the text around them is shown (bidi embeddings, overrides, isolates).
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_BREAKING_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})  # C0/C1 controls, U+2028, U+2029


def _escape_char(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with control, line-separator and bidi characters shown as ``\\xHH`` / ``\\uHHHH`` escapes."""
    if text.isprintable():  # the common case: nothing to do (isprintable is False for every escaped class)
        return text
    return "".join(
        _escape_char(c) if c in _BIDI_CONTROLS or unicodedata.category(c) in _LINE_BREAKING_CATEGORIES else c
        for c in text
    )


def iso_z(value: datetime) -> str:
    """ISO 8601 in UTC with ``Z``: ``2026-11-24T08:00:00Z`` (fractions of a second when there are any)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def is_rate(column: str) -> bool:
    return column.startswith(("rate", "share")) or column.endswith("_rate")


def fmt(column: str, value: Any) -> str:
    """Display text for one cell: rates as %, bytes human-readable, seconds to the millisecond."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return human_bytes(value) if column.endswith("_bytes") else f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if is_rate(column):
            return f"{value * 100:.2f}%"
        if (column.startswith("p") and column[1:].isdigit()) or column.endswith("seconds"):
            return f"{value:.3f} s"
        return f"{value:,.3f}"
    return str(value)


def unknown_name_message(kind: str, name: str, known: Sequence[str]) -> str:
    """``unknown query 'x'; did you mean 'y'?`` (or the known names when none is close)."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if close:
        return f"unknown {kind} {name!r}; did you mean {' or '.join(repr(c) for c in close)}?"
    return f"unknown {kind} {name!r}; known: {', '.join(known)}"
