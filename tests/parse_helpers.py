"""Lines for the parser's tests: AWS's first documented example entry, and helpers to take a line apart and to
parse lines as one block."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alblake.parse import parse_block, tokenize

# The first AWS-documented example entry (tests/data holds them verbatim from the AWS guide: docs/ALB_LOG_FORMAT.md).
DOC_LINE = (Path(__file__).parent / "data" / "aws_documented_examples.log").read_text().splitlines()[0]


def rows_of(*lines: str | bytes, fast: bool = True) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Parse lines as one block, on the module's fast engine (default) or on the exact path (the reference)."""
    encoded = [line.encode() if isinstance(line, str) else line for line in lines]
    parsed = parse_block(b"\n".join(encoded) + b"\n", engine=None if fast else "exact")
    return parsed.table.to_pylist(), [(q.line_number, q.reason) for q in parsed.quarantined]


def tokens_of(line: str) -> list[str]:
    """Re-quote tokens so they can be joined back into a line."""
    out = []
    position = 0
    for token in tokenize(line):
        quoted = line[position] == '"'
        out.append(f'"{token}"' if quoted else token)
        position += len(token) + (2 if quoted else 0) + 1
    return out
