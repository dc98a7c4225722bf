"""Property-based tests: the parser never crashes, conserves lines, and both paths agree on valid lines."""

from __future__ import annotations

import string
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alblake.parse import EMPTY_LINE, parse_block, reason_kind
from tests.parse_helpers import DOC_LINE, rows_of, tokens_of

pytestmark = pytest.mark.usefixtures("fast_engine")  # every property holds on each fast engine

_URL_CHARS = string.ascii_letters + string.digits + "/?&=%-._~ :;,+!*'()[]"
_QUOTED_CHARS = string.ascii_letters + string.digits + " /().,;:=-_\\"


def _valid_line(draw: st.DrawFn) -> str:
    url = draw(st.text(_URL_CHARS, min_size=1, max_size=40)).strip() or "/"
    agent = draw(st.text(_QUOTED_CHARS, max_size=30))
    status = draw(st.sampled_from(["200", "404", "502", "-"]))
    client = draw(st.sampled_from(["10.0.0.1", "2001:db8::1", "fe80::1:2:3"]))
    port = draw(st.integers(0, 65535))
    trailing = draw(st.sampled_from(["", " -", ' "x"', ' "a b" c']))
    line = (
        DOC_LINE.replace("192.168.131.39:2817", f"{client}:{port}")
        .replace("http://www.example.com:80/", f"http://h:80/{url}")
        .replace('"curl/7.46.0"', f'"{agent}"')
        .replace(" 200 200 ", f" 200 {status} ")
    )
    fields = draw(st.sampled_from([18, 19, 20, 21, 22, 24, 25, 29, 30, 33]))  # every format ALB wrote
    if fields < 33:
        line = " ".join(tokens_of(line)[:fields])
    if 19 <= fields <= 21:  # fields 21-22 are typed: a trailing "a b" c would put invalid values there
        trailing = ""
    return line + trailing


valid_lines = st.composite(_valid_line)()
garbage_lines = st.one_of(
    st.binary(max_size=200).map(lambda b: b.replace(b"\n", b" ")),
    st.text(max_size=120).map(lambda t: t.replace("\n", " ").encode("utf-8", "surrogatepass")),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(valid_lines.map(str.encode), garbage_lines), max_size=30))
def test_never_crashes_and_conserves_lines(lines: list[bytes]) -> None:
    block = b"".join(line + b"\n" for line in lines)
    parsed = parse_block(block, first_line_number=1)
    assert parsed.table.num_rows + len(parsed.quarantined) == len(lines)
    assert len({q.line_number for q in parsed.quarantined}) == len(parsed.quarantined)
    for quarantined in parsed.quarantined:
        assert quarantined.raw == lines[quarantined.line_number - 1]
        assert quarantined.reason


@settings(max_examples=200, deadline=None)
@given(st.lists(valid_lines, min_size=1, max_size=20))
def test_valid_lines_all_become_rows_and_paths_agree(lines: list[str]) -> None:
    fast_rows, fast_problems = rows_of(*lines)
    exact_rows, exact_problems = rows_of(*lines, fast=False)
    assert fast_problems == [] and exact_problems == []
    key = lambda row: sorted((k, str(v)) for k, v in row.items())  # noqa: E731
    assert sorted(fast_rows, key=key) == sorted(exact_rows, key=key)
    assert len(fast_rows) == len(lines)


def _reference_decode(text: str) -> str:
    """Byte-wise \\xHH decoding, kept as logged when the bytes are not UTF-8 (the documented semantics)."""
    import re

    raw = re.sub(rb"\\x([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), text.encode())
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return text


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(string.printable.replace("\\", ""), max_size=5),
            st.builds(lambda b: f"\\x{b:02X}", st.integers(0, 255)),
            st.sampled_from(["\\", "\\x", "\\xZ1", "\\n", "\\u0041", "\\N{DASH}", "é"]),
        ),
        max_size=12,
    ).map("".join)
)
def test_decode_escapes_matches_bytewise_reference(text: str) -> None:
    from alblake.parse import decode_escapes

    assert decode_escapes(text) == _reference_decode(text)


_NASTY = ['"', " ", "\r", "-", ".", "e", "+", "x", "\\", "\t", ":", "é", "nan", "1e3", "\x00"]


@st.composite
def _mutated_line(draw: st.DrawFn) -> bytes:
    """A valid line with a few random edits: stray quotes, odd numbers, doubled spaces, CRs, non-ASCII."""
    line = draw(valid_lines)
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(line)))
        edit = draw(st.sampled_from(["insert", "delete", "replace"]))
        text = draw(st.sampled_from(_NASTY))
        if edit == "insert":
            line = line[:position] + text + line[position:]
        elif edit == "delete":
            line = line[:position] + line[position + 1 :]
        else:
            line = line[:position] + text + line[position + len(text) :]
    return line.encode()


def _summary(lines: list[bytes], exact: bool) -> tuple[list[str], list[tuple[int, str]]]:
    parsed = parse_block(b"".join(line + b"\n" for line in lines), engine="exact" if exact else None)
    rows = sorted(repr(sorted(row.items())) for row in parsed.table.to_pylist())
    return rows, [(q.line_number, q.reason) for q in parsed.quarantined]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            valid_lines.map(str.encode),
            valid_lines.map(lambda line: (line + "\r").encode()),
            _mutated_line(),
            garbage_lines,
            st.just(b"\r"),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_fast_path_equals_exact_path_on_any_input(lines: list[bytes]) -> None:
    """The exact per-line path is the reference: the fast path must keep and reject exactly the same lines."""
    assert _summary(lines, exact=False) == _summary(lines, exact=True)


def _kinds(lines: list[bytes], **options: object) -> tuple[list[str], list[tuple[int, str]], Counter[str]]:
    """Rows, the quarantined lines listed (blank ones left out) and every quarantined line by kind of reason."""
    parsed = parse_block(b"".join(line + b"\n" for line in lines), **options)  # type: ignore[arg-type]
    rows = sorted(repr(sorted(row.items())) for row in parsed.table.to_pylist())
    listed = [(q.line_number, q.reason) for q in parsed.quarantined if q.reason != EMPTY_LINE]
    return rows, listed, Counter(reason_kind(q.reason) for q in parsed.quarantined) + parsed.unrecorded


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(valid_lines.map(str.encode), _mutated_line(), garbage_lines, st.just(b"")), max_size=25),
    st.integers(0, 8),
)
def test_a_record_limit_lists_the_first_quarantined_lines_and_counts_the_others(lines: list[bytes], limit: int) -> None:
    """With a record limit the rows are the same, the first ``limit`` quarantined lines that are not blank are
    listed as the exact path lists them, and every quarantined line is counted under the same kind of reason."""
    rows, listed, kinds = _kinds(lines, record_limit=limit)
    exact_rows, exact_listed, exact_kinds = _kinds(lines, engine="exact")
    assert (rows, listed[:limit], kinds) == (exact_rows, exact_listed[:limit], exact_kinds)
    assert len(rows) + kinds.total() == len(lines)


_decimal_texts = st.builds(
    lambda sign, whole, fraction: sign + whole + (f".{fraction}" if fraction else ""),
    st.sampled_from(["", "-"]),
    st.text("0123456789", min_size=1, max_size=70),
    st.text("0123456789", max_size=70),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_decimal_texts, min_size=3, max_size=3))
def test_times_of_any_length_read_as_python_reads_them(times: list[str]) -> None:
    """Processing times of many digits (beyond what a double holds exactly) are read as float() reads them."""
    line = DOC_LINE.replace("0.000 0.001 0.000", " ".join(times))
    assert _summary([line.encode()], exact=False) == _summary([line.encode()], exact=True)
