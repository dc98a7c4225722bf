"""Parse blocks of ALB access-log lines into Arrow tables of the curated schema.

Three engines produce the same result:

* native (the default): the C tokenizer of ``_albtok.c`` (via ``alblake.native``) scans a block once and
  writes Arrow buffers; it accepts only lines it converts exactly like the reference and declines the rest;
* arrow (the fallback when the C library is not built): Arrow's CSV reader (space-delimited, '"'-quoted, no
  escape character - ALB hex-escapes '"' and '\\' inside quoted fields), then vectorised checks and casts;
* exact: line by line in Python - the reference the others are tested against. It parses every line a fast
  engine declines (other field counts, unbalanced quotes, invalid UTF-8, unusual numbers) and names the reason
  for lines it rejects.

Every input line ends up either as a row (in line order) or as a quarantined line: lines in = rows +
quarantined. A caller that keeps only the first quarantined lines (the quarantine stores 10,000 an object) says
how many with ``record_limit``: the native engine then counts later junk by kind of reason, in C, instead of
building a ``QuarantinedLine`` for each.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from alblake import native
from alblake.errors import InputError
from alblake.schema import ARROW_SCHEMA, COLUMNS, LOG_FIELDS, TIMESTAMP, VALUE_TEXT, Layout, LogField
from alblake.schema import KNOWN_FIELDS as KNOWN_FIELDS  # re-exported: the parser's bounds, declared in schema
from alblake.schema import MIN_FIELDS as MIN_FIELDS

_STRING = pa.string()


@dataclass(frozen=True)
class _Field:
    name: str  # as docs/ALB_LOG_FORMAT.md names it, for quarantine reasons
    column: str | None  # the schema column it fills as is; None for fields split in _derive
    arrow_type: pa.DataType = _STRING
    split_into: tuple[str, ...] = ()  # the columns a split field fills ('ip:port' or the request line)
    layout: Layout = "value"  # value, address ('ip:port') or request ('VERB URL PROTO')


def _parser_field(log_field: LogField) -> _Field:
    if log_field.layout == "value":
        column = log_field.columns[0]
        return _Field(log_field.name, column.name, column.arrow_type)
    return _Field(log_field.name, None, split_into=tuple(c.name for c in log_field.columns), layout=log_field.layout)


# The log's fields in order (0-based position = index), derived from schema.LOG_FIELDS; one table for all paths.
_FIELDS: tuple[_Field, ...] = tuple(_parser_field(f) for f in LOG_FIELDS)
_TYPED_POSITIONS = tuple(i for i, f in enumerate(_FIELDS) if f.arrow_type != pa.string())

# What a typed field may look like, for both paths (anything else is quarantined by the exact path).
# Integers and floats are plain decimals as ALB writes them ('-1', '0.000'); no 'nan', '1e3', '+5' or '.5'.
_VALID_TEXT = VALUE_TEXT
# The fast path accepts a subset it can cast without overflow; the rest is left to the exact path.
_FAST_TEXT = {
    **_VALID_TEXT,
    pa.float64(): r"-?[0-9]{1,300}(?:[.][0-9]+)?",  # finite: more digits may overflow to infinity
    pa.int32(): r"-?[0-9]{1,9}",
    pa.int64(): r"-?[0-9]{1,18}",
    TIMESTAMP: "[1-9][0-9]{3}" + _VALID_TEXT[TIMESTAMP].removeprefix("[0-9]{4}"),  # Arrow accepts year 0000, Python not
}
_VALID_RE = {arrow_type: re.compile(pattern) for arrow_type, pattern in _VALID_TEXT.items()}
_INT_LIMITS = {pa.int32(): 2**31, pa.int64(): 2**63}
# An ALB line is a few KB (user agent truncated at 8 KB); a stream with a longer line is not a log. The reader
# rejects the object (bounded memory); a block parsed directly quarantines such a line.
MAX_LINE_BYTES = 1 << 20

# Columns whose text may carry ALB's \xHH escapes and is decoded when the result is valid UTF-8.
_ESCAPED_COLUMNS = tuple(c.name for c in COLUMNS if c.escaped)
_TRIMMED_COLUMNS = tuple(c.name for c in COLUMNS if c.trimmed)  # ' ' stripped at both ends (before decoding)
_REQUIRED_FIELDS = ("type", "time", "elb")  # a line without them is quarantined (each field is its column)

_ADDRESS_RE = r"^(?P<ip>.*):(?P<port>[0-9]{1,5})$"
_REQUEST_RE = r"^(?P<verb>[^ ]*) (?P<url>.*) (?P<proto>[^ ]+)$"
_REQUEST_NO_PROTO_RE = r"^(?P<verb>[^ ]*) (?P<url>.*)$"
_ELB_NAME_RE = r"^[^/]+/(?P<name>[^/]+)/"
_HEX_ESCAPE_RE = re.compile(rb"\\x([0-9A-Fa-f]{2})")
EMPTY_LINE = "empty line"  # the reason for a blank line
_ELB_FORM_REASON = "elb is not of the form type/name/id"
_NUMBER = re.compile(r"(?<![\w-])\d+")  # a number on its own (not the 8 of UTF-8)


def reason_kind(reason: str) -> str:
    """The reason without the quoted text and the numbers that vary from line to line (what counts group by):
    ``invalid integer in sent_bytes: 'x'`` -> ``invalid integer in sent_bytes``,
    ``expected at least 25 fields, found 3`` -> ``expected at least N fields, found N``."""
    return _NUMBER.sub("N", reason.split(": ", 1)[0])


@dataclass(frozen=True)
class QuarantinedLine:
    line_number: int  # 1-based within the source
    reason: str
    raw: bytes


@dataclass
class ParsedBlock:
    """Rows of one block in ``ARROW_SCHEMA`` plus their partition keys and line numbers, and the rejected lines:
    each in ``quarantined`` (in line order), or, beyond a caller's ``record_limit``, counted in ``unrecorded``."""

    table: pa.Table
    elb_name: pa.Array  # string, one per row
    hour_start: pa.Array  # timestamp[us, UTC] truncated to the hour, one per row
    row_lines: np.ndarray  # int64, the line number of each row
    quarantined: list[QuarantinedLine] = field(default_factory=list)
    unrecorded: Counter[str] = field(default_factory=Counter)  # quarantined lines not listed, by reason_kind

    @property
    def lines(self) -> int:
        return int(self.table.num_rows) + len(self.quarantined) + self.unrecorded.total()


class LineError(InputError, ValueError):
    """A line that cannot become a row; the message is the quarantine reason."""


# --------------------------------------------------------------------------------------------- exact path


def tokenize(line: str) -> list[str]:
    """Split one log line into fields: single spaces separate, '"' delimits quoted fields, no escapes."""
    fields: list[str] = []
    pos, end_of_line = 0, len(line)
    while True:
        if pos < end_of_line and line[pos] == '"':
            close = line.find('"', pos + 1)
            if close < 0:
                raise LineError(_tokenizer_reason("unterminated quoted field", len(fields) + 1))
            fields.append(line[pos + 1 : close])
            pos = close + 1
        else:
            stop = line.find(" ", pos)
            stop = end_of_line if stop < 0 else stop
            token = line[pos:stop]
            if '"' in token:
                raise LineError(_tokenizer_reason("stray quote in field", len(fields) + 1))
            fields.append(token)
            pos = stop
        if pos == end_of_line:
            return fields
        if line[pos] != " ":
            raise LineError(_tokenizer_reason("no space after quoted field", len(fields)))
        pos += 1


def _tokenizer_reason(problem: str, field_number: int) -> str:
    return f"{problem} {field_number}"


def _value_kind(field: _Field) -> str:
    return {TIMESTAMP: "timestamp", pa.float64(): "number"}.get(field.arrow_type, "integer")


def _invalid_value_reason(field: _Field, text: str) -> str:
    return f"invalid {_value_kind(field)} in {field.name}: {text[:40]!r}"


def _out_of_range_reason(field: _Field, text: str) -> str:
    """An integer beyond its type, or a number too large for a float (it would read as infinity)."""
    return f"{_value_kind(field)} out of range in {field.name}: {text[:40]!r}"


def _convert_field(field: _Field, text: str) -> object:
    if text == "-":
        return None
    if field.arrow_type == pa.string():
        return text
    if not _VALID_RE[field.arrow_type].fullmatch(text):
        raise LineError(_invalid_value_reason(field, text))
    if field.arrow_type == TIMESTAMP:
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise LineError(_invalid_value_reason(field, text)) from None
    if field.arrow_type == pa.float64():
        value = float(text)
        if not math.isfinite(value):  # too many digits for a double: float() reads it as infinity
            raise LineError(_out_of_range_reason(field, text))
        return value
    number = int(text)
    limit = _INT_LIMITS[field.arrow_type]
    if not -limit <= number < limit:
        raise LineError(_out_of_range_reason(field, text))
    return number


def _invalid_utf8_reason(byte: int) -> str:
    return f"invalid UTF-8 at byte {byte}"


_CARRIAGE_RETURN_REASON = "carriage return inside line"
_LONG_LINE_REASON = f"line longer than {MAX_LINE_BYTES} bytes"


def _field_count_reason(found: int) -> str:
    return f"expected at least {MIN_FIELDS} fields, found {found}"


def parse_line_fields(raw: bytes) -> list[object]:
    """The first ``KNOWN_FIELDS`` typed values of one raw line (missing ones None); raises LineError."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LineError(_invalid_utf8_reason(exc.start)) from None
    line = line.removesuffix("\r")  # CRLF line endings
    if not line.strip():
        raise LineError(EMPTY_LINE)
    if "\r" in line:
        raise LineError(_CARRIAGE_RETURN_REASON)
    if len(raw) > MAX_LINE_BYTES:
        raise LineError(_LONG_LINE_REASON)
    fields = tokenize(line)
    if len(fields) < MIN_FIELDS:
        raise LineError(_field_count_reason(len(fields)))
    values: list[object] = []
    for log_field, text in zip(_FIELDS, fields, strict=False):
        values.append(_convert_field(log_field, text))
    values.extend([None] * (KNOWN_FIELDS - len(values)))
    return values


def _parse_lines_exactly(lines: Sequence[bytes], line_numbers: Sequence[int]) -> ParsedBlock:
    columns: list[list[object]] = [[] for _ in range(KNOWN_FIELDS)]
    kept: list[int] = []
    quarantined: list[QuarantinedLine] = []
    for raw, number in zip(lines, line_numbers, strict=True):
        try:
            values = parse_line_fields(raw)
        except LineError as exc:
            quarantined.append(QuarantinedLine(number, str(exc), raw))
            continue
        for column, value in zip(columns, values, strict=True):
            column.append(value)
        kept.append(number)
    raw_fields = [pa.array(col, type=f.arrow_type) for f, col in zip(_FIELDS, columns, strict=True)]
    return _derive(raw_fields, np.array(kept, dtype=np.int64), dict(zip(line_numbers, lines, strict=True)), quarantined)


# ---------------------------------------------------------------------------------------------- fast path


def _line_bounds(block: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, before '\\n') offsets of every line of a block that ends with '\\n'."""
    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
    starts = np.empty_like(ends)
    starts[0:1] = 0
    starts[1:] = ends[:-1] + 1
    return starts, ends


def _lines_to_decline(block: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Lines the CSV tokenizer must not see; the exact path decides about them.

    Declined: empty lines, lines with a non-ASCII byte (ALB hex-escapes those, so a valid line is ASCII), a
    carriage return other than a CRLF ending, more than MAX_LINE_BYTES, or a '"' that does not open a field
    (after a space or at the line start) or close one (before a space or at the line end) - the CSV reader
    would read such quotes differently from the exact tokenizer.
    """
    data = np.frombuffer(block, dtype=np.uint8)
    declined = (ends == starts) | (ends - starts > MAX_LINE_BYTES)
    quotes = np.flatnonzero(data == 34)
    if len(quotes):
        first_quote = np.searchsorted(quotes, starts)
        quote_counts = np.searchsorted(quotes, ends) - first_quote
        odd = quote_counts % 2 == 1
        declined |= odd
        misplaced = _misplaced_quotes(data, quotes, first_quote, quote_counts)
        if len(misplaced):
            declined[np.searchsorted(ends, misplaced)] = True
    if int(data.max()) >= 128:
        high = np.flatnonzero(data >= 128)
        declined |= np.searchsorted(high, ends) > np.searchsorted(high, starts)
    if block.find(b"\r") >= 0:  # CRLF endings are fine (the CSV reader ends lines there too); other CRs are not
        returns = np.flatnonzero(data == 13)
        returns = returns[data[returns + 1] != 10]
        declined |= np.searchsorted(returns, ends) > np.searchsorted(returns, starts)
        declined |= (ends - starts == 1) & (data[np.maximum(ends - 1, 0)] == 13)  # a CRLF-only line is empty
    return np.asarray(declined)


def _misplaced_quotes(
    data: np.ndarray, quotes: np.ndarray, first_quote: np.ndarray, quote_counts: np.ndarray
) -> np.ndarray:
    """Positions of quotes that neither open a field (after ' ' or at line start) nor close one (before ' '
    or at line end), taking quotes in pairs within each line."""
    rank = np.arange(len(quotes)) - np.repeat(first_quote, quote_counts)  # pairing restarts at each line
    before = data[quotes - 1] if quotes[0] > 0 else np.concatenate(([10], data[quotes[1:] - 1]))
    after = data[quotes + 1]  # a block ends with '\n', so a quote is never its last byte
    crlf_after = (after == 13) & (data[np.minimum(quotes + 2, len(data) - 1)] == 10)
    opens_field = (before == 32) | (before == 10)
    closes_field = (after == 32) | (after == 10) | crlf_after
    return np.asarray(quotes[np.where(rank % 2 == 0, ~opens_field, ~closes_field)])


def _first_field_count(block: bytes, starts: np.ndarray, ends: np.ndarray) -> int | None:
    """Field count of the first plausible log line among the first 50 (the CSV pass expects it)."""
    for start, end in zip(starts[:50], ends[:50], strict=False):
        try:
            count = len(tokenize(block[start:end].decode("utf-8")))
        except (LineError, UnicodeDecodeError):
            continue
        if count >= MIN_FIELDS:
            return count
    return None


def _csv_read(block: bytes, field_count: int) -> tuple[pa.Table, list[int]]:
    """CSV-tokenize a block; returns the table and the 1-based line numbers of rows with another count."""
    other_count: list[int] = []

    def on_invalid_row(row: Any) -> str:
        other_count.append(int(row.number))
        return "skip"

    names = [f"f{i}" for i in range(field_count)]
    types = {name: pa.string() for name in names}  # typed fields are validated and cast in _typed_fields
    table = pa_csv.read_csv(
        pa.py_buffer(block),
        read_options=pa_csv.ReadOptions(column_names=names, use_threads=False, block_size=1 << 20),
        parse_options=pa_csv.ParseOptions(
            delimiter=" ",
            quote_char='"',
            double_quote=False,
            escape_char=False,
            newlines_in_values=False,
            ignore_empty_lines=False,
            invalid_row_handler=on_invalid_row,
        ),
        convert_options=pa_csv.ConvertOptions(
            column_types=types,
            include_columns=names[:KNOWN_FIELDS],
            null_values=["-"],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            check_utf8=False,  # safe: lines with any non-ASCII byte were declined before the CSV pass
        ),
    )
    return table, other_count


Engine = Literal["native", "arrow", "exact"]
# native: the C tokenizer (fastest; built with the package); arrow: Arrow's CSV reader; exact: line by line.
DEFAULT_ENGINE: Engine = "native" if native.available() else "arrow"


def parse_block(
    block: bytes | memoryview,
    first_line_number: int = 1,
    *,
    engine: Engine | None = None,
    record_limit: int | None = None,
) -> ParsedBlock:
    """Parse a block of complete lines (it must end with '\\n'). Never raises for bad content.

    Every engine gives the same result; ``exact`` parses every line on the reference path the fast engines
    are tested against, and the fast ones hand it the lines they decline.

    ``record_limit``: quarantined lines the caller needs as ``QuarantinedLine`` (None: all). The first
    ``record_limit`` quarantined lines are always in ``quarantined``; later ones may instead be counted by kind of
    reason in ``unrecorded``, and blank lines then always are (the native engine does so; the others list every
    line).
    """
    if not len(block):
        return _parse_lines_exactly([], [])
    if bytes(block[-1:]) != b"\n":
        raise ValueError("a block must end with a newline")
    engine = engine or DEFAULT_ENGINE
    if engine == "native":
        parsed = _parse_natively(block, first_line_number, record_limit)
        if parsed is not None:
            return parsed
        engine = "arrow"
    block = bytes(block)  # the other engines slice and search it as bytes
    exact = engine == "exact"
    starts, ends = _line_bounds(block)
    numbers = np.arange(first_line_number, first_line_number + len(ends))
    raw_lines = _RawLines(block, starts, ends, numbers)
    every_line = np.arange(len(ends))
    field_count = None if exact else _first_field_count(block, starts, ends)
    if field_count is None:
        return _parse_lines_exactly(raw_lines.take(every_line), numbers.tolist())
    declined = _lines_to_decline(block, starts, ends)
    keep = np.flatnonzero(~declined)
    csv_block = _without_lines(block, starts, ends, np.flatnonzero(declined)) if declined.any() else block
    try:
        table, other_count = _csv_read(csv_block, field_count)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return _parse_lines_exactly(raw_lines.take(every_line), numbers.tolist())
    if table.num_rows + len(other_count) != len(keep):
        return _parse_lines_exactly(raw_lines.take(every_line), numbers.tolist())
    other_rows = np.asarray(other_count, dtype=np.int64) - 1
    row_idx = np.delete(keep, other_rows) if other_count else keep
    try:
        typed, unusual = _typed_fields(table)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # e.g. a well-formed but impossible date: let the exact path say
        return _parse_lines_exactly(raw_lines.take(every_line), numbers.tolist())
    slow_idx = np.concatenate([np.flatnonzero(declined), keep[other_rows], row_idx[unusual]])
    if len(unusual):
        row_idx = np.delete(row_idx, unusual)
    fast = _derive(typed, numbers[row_idx], raw_lines.by_number, [])
    if not len(slow_idx):
        return fast
    slow_idx.sort()
    slow = _parse_lines_exactly(raw_lines.take(slow_idx), numbers[slow_idx].tolist())
    return _merge_in_line_order(fast, slow)


_NATIVE_KINDS = {
    _STRING: native.KIND_STRING,
    TIMESTAMP: native.KIND_TIMESTAMP,
    pa.float64(): native.KIND_FLOAT64,
    pa.int32(): native.KIND_INT32,
    pa.int64(): native.KIND_INT64,
}


def _native_spec(field: _Field) -> native.FieldSpec:
    flags = (native.FLAG_REQUIRED if field.name in _REQUIRED_FIELDS else 0) | (
        native.FLAG_ELB_FORM if field.name == "elb" else 0
    )
    names = field.split_into or (field.column or field.name,)
    outputs = tuple(native.Output(name, ARROW_SCHEMA.field(name).type, _gather_flags(name)) for name in names)
    if field.layout == "request":
        kind = native.KIND_REQUEST
    elif field.layout == "address":
        kind = native.KIND_ADDRESS
    else:
        kind = _NATIVE_KINDS[field.arrow_type]
    return native.FieldSpec(kind, flags, outputs)


def _gather_flags(column: str) -> int:
    return (native.GATHER_DECODE_ESCAPES if column in _ESCAPED_COLUMNS else 0) | (
        native.GATHER_TRIM_SPACES if column in _TRIMMED_COLUMNS else 0
    )


_SCANNER = (
    native.Scanner([_native_spec(f) for f in _FIELDS], MIN_FIELDS, MAX_LINE_BYTES) if native.available() else None
)


def takes_blocks_of_any_lines() -> bool:
    """Whether parse_block parses a block of any number of lines in bounded memory and time: the native engine
    scans it in steps of bounded rows and recorded lines and counts junk in C. Otherwise a caller cuts blocks
    of many short lines into pieces (every line the other engines decline is parsed as a Python object)."""
    return DEFAULT_ENGINE == "native" and _SCANNER is not None


def _parse_natively(block: bytes | memoryview, first_line_number: int, record_limit: int | None) -> ParsedBlock | None:
    """The C tokenizer's rows, plus the lines it left to the exact path parsed there and the lines it rejected
    (those it recorded parsed on the exact path for their reasons, the others counted); None if it cannot run."""
    if _SCANNER is None or not _SCANNER.can_scan(block):
        return None
    return _concat([_native_part(block, scan, first_line_number) for scan in _SCANNER.scan(block, record_limit)])


def _native_part(block: bytes | memoryview, scan: native.Scan, first_line_number: int) -> ParsedBlock:
    columns = scan.columns
    table = pa.table([columns[f.name] for f in ARROW_SCHEMA], schema=ARROW_SCHEMA)
    fast = ParsedBlock(
        table, _elb_names(columns["elb"]), _hour_starts(columns["time"]), scan.row_lines + first_line_number
    )
    fast.unrecorded.update({_rejection_kind(code): count for code, count in scan.unrecorded.items()})
    if not len(scan.recorded):
        return fast
    raw_lines = [bytes(block[start:end]) for start, end in scan.recorded_bounds.tolist()]
    slow = _parse_lines_exactly(raw_lines, (scan.recorded + first_line_number).tolist())
    return _merge_in_line_order(fast, slow)


_REJECTION_REASONS: dict[str, Callable[[_Field], str]] = {  # native.REJECTION_REASONS: a reason of that kind
    "empty": lambda _: EMPTY_LINE,
    "invalid utf-8": lambda _: _invalid_utf8_reason(0),
    "carriage return": lambda _: _CARRIAGE_RETURN_REASON,
    "too long": lambda _: _LONG_LINE_REASON,
    "unterminated quote": lambda _: _tokenizer_reason("unterminated quoted field", 1),
    "stray quote": lambda _: _tokenizer_reason("stray quote in field", 1),
    "no space after quote": lambda _: _tokenizer_reason("no space after quoted field", 1),
    "too few fields": lambda _: _field_count_reason(0),
    "invalid value": lambda field: _invalid_value_reason(field, ""),
    "out of range": lambda field: _out_of_range_reason(field, ""),
    "missing": lambda field: _missing_reason(field.name),
    "elb form": lambda _: _ELB_FORM_REASON,
    "malformed address": lambda field: _malformed_reason(field.name),
}


def _rejection_kind(code: int) -> str:
    """The kind of reason (``reason_kind``) the exact path gives a line the C tokenizer rejected with ``code``."""
    reason, field_index = native.rejection_of(code)
    return reason_kind(_REJECTION_REASONS[reason](_FIELDS[field_index]))


def _without_lines(block: bytes, starts: np.ndarray, ends: np.ndarray, dropped: np.ndarray) -> bytes:
    """The block minus the given lines, copied in one join of the runs between them."""
    view = memoryview(block)
    runs, position = [], 0
    for index in dropped.tolist():
        runs.append(view[position : int(starts[index])])
        position = int(ends[index]) + 1
    runs.append(view[position:])
    return b"".join(runs)


def _typed_fields(table: pa.Table) -> tuple[list[pa.Array], np.ndarray]:
    """All KNOWN_FIELDS raw fields with typed ones cast, and the rows whose typed text is unusual.

    Unusual rows (text outside the fast path's grammar) are dropped from the returned fields; the caller
    hands them to the exact path, which keeps or quarantines them, so both paths agree by construction.
    """
    present = set(table.column_names)
    fields: list[pa.Array] = [
        table.column(f"f{i}").combine_chunks() if f"f{i}" in present else pa.nulls(table.num_rows, pa.string())
        for i in range(KNOWN_FIELDS)
    ]
    usual = pa.array(np.ones(table.num_rows, dtype=bool))
    for index in _TYPED_POSITIONS:
        pattern = f"^{_FAST_TEXT[_FIELDS[index].arrow_type]}$"
        ok = pc.or_kleene(pc.is_null(fields[index]), pc.match_substring_regex(fields[index], pattern))
        usual = pc.and_(usual, ok)
    unusual = np.flatnonzero(~usual.to_numpy(zero_copy_only=False))
    if len(unusual):
        fields = [pc.filter(column, usual) for column in fields]
    for index in _TYPED_POSITIONS:
        fields[index] = pc.cast(fields[index], _FIELDS[index].arrow_type)
    return fields, unusual


@dataclass(frozen=True)
class _RawLines:
    block: bytes
    starts: np.ndarray
    ends: np.ndarray
    numbers: np.ndarray

    def take(self, indices: np.ndarray) -> list[bytes]:
        return [self.block[self.starts[i] : self.ends[i]] for i in indices.tolist()]

    def by_number(self, number: int) -> bytes:
        index = number - int(self.numbers[0])
        return self.block[self.starts[index] : self.ends[index]]


def _merge_in_line_order(first: ParsedBlock, second: ParsedBlock) -> ParsedBlock:
    """Both parts of one block (parsed from disjoint lines, each in line order), rows back in line order."""
    merged = _concat([first, second])
    if not first.table.num_rows or not second.table.num_rows or first.row_lines[-1] < second.row_lines[0]:
        return merged
    order = np.argsort(merged.row_lines, kind="stable")
    taken = pa.array(order)
    return ParsedBlock(
        merged.table.take(taken),
        merged.elb_name.take(taken),
        merged.hour_start.take(taken),
        merged.row_lines[order],
        merged.quarantined,
        merged.unrecorded,
    )


def _concat(parts: Sequence[ParsedBlock]) -> ParsedBlock:
    """The parts of one block, in the order given (their quarantined lines sorted)."""
    if len(parts) == 1:
        return parts[0]
    unrecorded: Counter[str] = Counter()
    for part in parts:
        unrecorded.update(part.unrecorded)
    return ParsedBlock(
        table=pa.concat_tables([p.table for p in parts]),
        elb_name=pa.concat_arrays([p.elb_name for p in parts]),
        hour_start=pa.concat_arrays([p.hour_start for p in parts]),
        row_lines=np.concatenate([p.row_lines for p in parts]),
        quarantined=sorted((q for p in parts for q in p.quarantined), key=lambda q: q.line_number),
        unrecorded=unrecorded,
    )


# ------------------------------------------------------------------------------------------------- derive


def _split_address(column: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(ip, port, malformed mask) for an unbracketed 'ip:port' column; split on the last ':'."""
    parts = pc.split_pattern(column, ":", max_splits=1, reverse=True)
    lengths = pc.list_value_length(parts)
    if pc.all(pc.fill_null(pc.equal(lengths, 2), True)).as_py():
        port_text = pc.list_element(parts, 1)
        if pc.all(pc.fill_null(pc.match_substring_regex(port_text, "^[0-9]{1,5}$"), True)).as_py():
            ip, port = pc.list_element(parts, 0), pc.cast(port_text, pa.int32())
            return ip, port, pa.nulls(len(column), pa.bool_()).fill_null(False)
    return _split_address_exactly(column)


def _split_address_exactly(column: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    parts = pc.extract_regex(column, _ADDRESS_RE)
    ip = pc.struct_field(parts, "ip")
    port = pc.cast(pc.struct_field(parts, "port"), pa.int32())
    malformed = pc.and_(pc.is_valid(column), pc.is_null(parts))
    return ip, port, pc.fill_null(malformed, False)


def _dash_to_null(column: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(column, "-"), pa.scalar(None, pa.string()), column)


def _split_request(request: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(verb, url, proto): a split at the first and last space, or ``_split_request_exactly`` for odd requests."""
    head = pc.split_pattern(request, " ", max_splits=1)
    regular = pc.and_(pc.equal(pc.list_value_length(head), 2), pc.invert(pc.ends_with(request, " ")))
    if not pc.all(pc.fill_null(regular, True)).as_py():
        return _split_request_exactly(request)
    tail = pc.split_pattern(pc.list_element(head, 1), " ", max_splits=1, reverse=True)
    if not pc.all(pc.fill_null(pc.equal(pc.list_value_length(tail), 2), True)).as_py():
        return _split_request_exactly(request)
    verb, url, proto = pc.list_element(head, 0), pc.list_element(tail, 0), pc.list_element(tail, 1)
    return _dash_to_null(_empty_to_null(verb)), _dash_to_null(_empty_to_null(url)), _dash_to_null(proto)


def _empty_to_null(column: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)


def _split_request_exactly(request: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Any request text as 'VERB URL PROTO', the URL possibly holding spaces.

    A request ending with a space has an empty protocol (ALB writes 'VERB URL ' then), 'VERB URL' has none
    either, and a single token is kept whole as the URL.
    """
    no_proto = pc.ends_with(request, " ")
    body = pc.if_else(no_proto, pc.utf8_slice_codeunits(request, 0, -1), request)
    three = pc.extract_regex(body, _REQUEST_RE)
    two = pc.extract_regex(body, _REQUEST_NO_PROTO_RE)
    three_parts = pc.and_(pc.invert(no_proto), pc.is_valid(three))
    verb = pc.if_else(three_parts, pc.struct_field(three, "verb"), pc.struct_field(two, "verb"))
    url = pc.coalesce(pc.if_else(three_parts, pc.struct_field(three, "url"), pc.struct_field(two, "url")), body)
    proto = pc.if_else(three_parts, pc.struct_field(three, "proto"), pa.scalar(None, pa.string()))
    return _dash_to_null(_empty_to_null(verb)), _dash_to_null(_empty_to_null(url)), _dash_to_null(proto)


def decode_escapes(text: str) -> str:
    """Decode ALB's \\xHH escapes when the decoded bytes are valid UTF-8; otherwise keep the logged text."""
    if text.count("\\") == text.count("\\x"):  # every backslash starts \\x: the C codec does exactly this
        try:
            return text.encode("ascii").decode("unicode_escape").encode("latin-1").decode("utf-8")
        except UnicodeError:
            pass
    decoded = _HEX_ESCAPE_RE.sub(lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8"))
    try:
        return decoded.decode("utf-8")
    except UnicodeDecodeError:
        return text


def _decode_escapes_column(column: pa.Array) -> pa.Array:
    has_escape = pc.fill_null(pc.match_substring(column, "\\x"), False)
    if not pc.any(has_escape).as_py():
        return column
    decoded = [decode_escapes(text) for text in pc.filter(column, has_escape).to_pylist()]
    return pc.replace_with_mask(column, has_escape, pa.array(decoded, type=pa.string()))


def _derive(
    raw: list[pa.Array],
    line_numbers: np.ndarray,
    raw_line: Callable[[int], bytes] | dict[int, bytes],
    quarantined: list[QuarantinedLine],
) -> ParsedBlock:
    columns: dict[str, pa.Array] = {}
    malformed: list[tuple[pa.Array, str]] = []
    for index, log_field in enumerate(_FIELDS):
        if log_field.layout == "address":
            ip, port, bad = _split_address(raw[index])
            columns.update(zip(log_field.split_into, (ip, port), strict=True))
            malformed.append((bad, _malformed_reason(log_field.name)))
        elif log_field.layout == "request":
            columns.update(zip(log_field.split_into, _split_request(raw[index]), strict=True))
        else:
            columns[log_field.column or log_field.name] = raw[index]
    for name in _TRIMMED_COLUMNS:
        columns[name] = pc.utf8_trim(columns[name], " ")
    for name in _ESCAPED_COLUMNS:
        columns[name] = _decode_escapes_column(columns[name])
    elb_name = _elb_names(columns["elb"])
    reasons = _problems(columns, elb_name, malformed)
    table = pa.table([columns[f.name] for f in ARROW_SCHEMA], schema=ARROW_SCHEMA)
    hour_start = _hour_starts(columns["time"])
    if reasons is None:
        return ParsedBlock(table, elb_name, hour_start, line_numbers, quarantined)
    lookup = raw_line.__getitem__ if isinstance(raw_line, dict) else raw_line
    numbers = line_numbers.tolist()
    bad_rows = [i for i, reason in enumerate(reasons) if reason]
    extra = [QuarantinedLine(numbers[i], reasons[i] or "", lookup(numbers[i])) for i in bad_rows]
    keep = np.array([not reason for reason in reasons], dtype=bool)
    return ParsedBlock(
        table.filter(pa.array(keep)),
        elb_name.filter(pa.array(keep)),
        hour_start.filter(pa.array(keep)),
        line_numbers[keep],
        sorted(quarantined + extra, key=lambda q: q.line_number),
    )


def is_constant(column: pa.Array) -> bool:
    """True when the column is not empty, has no NULL and holds a single value (cheaper than hashing it)."""
    return len(column) > 0 and column.null_count == 0 and bool(pc.all(pc.equal(column, column[0])).as_py())


def _elb_names(elb: pa.Array) -> pa.Array:
    """The LB name of each 'app/<name>/<id>' (null when not of that form); parsed once per distinct value."""
    if is_constant(elb):  # the usual case: a log object comes from one load balancer
        name = pc.struct_field(pc.extract_regex(elb.slice(0, 1), _ELB_NAME_RE), "name")[0]
        return pa.repeat(name, len(elb))
    encoded = pc.dictionary_encode(elb)
    names = pc.struct_field(pc.extract_regex(encoded.dictionary, _ELB_NAME_RE), "name")
    return pc.take(names, encoded.indices)


_MICROS_PER_HOUR = 3_600_000_000


def _hour_starts(time: pa.Array) -> pa.Array:
    """Each timestamp truncated to its UTC hour (integer arithmetic; floor_temporal is slower with a zone)."""
    micros = pc.fill_null(pc.cast(time, pa.int64()), 0).to_numpy(zero_copy_only=False)
    hours = (micros // _MICROS_PER_HOUR) * _MICROS_PER_HOUR
    return pa.array(hours, type=TIMESTAMP, mask=pc.is_null(time).to_numpy(zero_copy_only=False))


def _missing_reason(field_name: str) -> str:
    return f"missing {field_name}"


def _malformed_reason(field_name: str) -> str:
    return f"malformed {field_name}"


def _problems(
    columns: dict[str, pa.Array], elb_name: pa.Array, malformed: list[tuple[pa.Array, str]]
) -> list[str | None] | None:
    """Per-row reason why a parsed row cannot be kept, or None when every row is fine."""
    checks: list[tuple[pa.Array, str]] = [
        *((pc.is_null(columns[name]), _missing_reason(name)) for name in _REQUIRED_FIELDS),
        (pc.is_null(elb_name), _ELB_FORM_REASON),
        *malformed,
    ]
    if not any(pc.any(mask).as_py() for mask, _ in checks):
        return None
    reasons: list[str | None] = [None] * len(columns["type"])
    for mask, reason in reversed(checks):
        for index in np.flatnonzero(mask.to_numpy(zero_copy_only=False)).tolist():
            reasons[index] = reason
    return reasons
