"""The raw RegexSerDe table shows what the curated lake holds.

RAW_LOG_REGEX runs here under Python's ``re`` (it uses only constructs that mean the same in java.util.regex);
``fullmatch`` is RegexSerDe's ``Matcher.matches()``. A group that does not take part gives NULL, as RegexSerDe
does; values are then converted as Hive converts text for the raw table's column types. Every shared column
must equal the curated row from the parser, except that ALB's \\xHH escapes are decoded only in the lake.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alblake.parse import decode_escapes, parse_block
from alblake.schema import (
    COLUMNS,
    LOG_FIELDS,
    RAW_LOG_REGEX,
    STRING,
    TIMESTAMP,
    Column,
    LogField,
    raw_glue_type,
    raw_log_regex,
)
from tests.parse_helpers import tokens_of

DATA = Path(__file__).parent / "data"
DOCUMENTED = [line for line in (DATA / "aws_documented_examples.log").read_text().splitlines() if line.strip()]
HISTORICAL = [
    line
    for line in (DATA / "historical_lines.log").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]
PATTERN = re.compile(RAW_LOG_REGEX)
_HIVE = {"int": int, "bigint": int, "double": float, "string": str}


def raw_row(line: str) -> dict[str, Any] | None:
    """The raw table's row for a line (None: no match, RegexSerDe's all-NULL row), typed as Hive types it."""
    match = PATTERN.fullmatch(line)
    if match is None:
        return None
    row: dict[str, Any] = {}
    for column, text in zip(COLUMNS, match.groups(), strict=True):
        value = None if text is None else _HIVE[raw_glue_type(column.arrow_type)](text)
        if column.arrow_type == TIMESTAMP and value is not None:  # text in the raw table; compare as instants
            value = datetime.fromisoformat(value)
        if column.escaped and value is not None:  # the one documented difference: the lake decodes \xHH
            value = decode_escapes(value)
        row[column.name] = value
    return row


def curated_rows(lines: list[str]) -> tuple[list[dict[str, Any]], set[int]]:
    parsed = parse_block("".join(line + "\n" for line in lines).encode(), engine="exact")
    return parsed.table.to_pylist(), {q.line_number - 1 for q in parsed.quarantined}


def assert_raw_equals_curated(lines: list[str]) -> None:
    rows, quarantined = curated_rows(lines)
    kept = [line for index, line in enumerate(lines) if index not in quarantined]
    assert len(kept) == len(rows)
    for line, curated in zip(kept, rows, strict=True):
        raw = raw_row(line)
        assert raw is not None, f"the raw regex does not match a line the lake keeps: {line}"
        differing = {k: (raw[k], curated[k]) for k in curated if raw[k] != curated[k]}
        assert not differing, f"{line}\n(raw, curated): {differing}"


def with_fields(line: str, **replacements: str) -> str:
    """``line`` with some fields (by 0-based index, as 'f12') replaced by logged text (quotes included)."""
    tokens = tokens_of(line)
    for key, text in replacements.items():
        tokens[int(key[1:])] = text
    return " ".join(tokens)


def test_documented_lines_agree_on_every_column() -> None:
    assert len(DOCUMENTED) == 7
    assert_raw_equals_curated(DOCUMENTED)
    no_target = raw_row(DOCUMENTED[6])
    assert no_target is not None
    assert no_target["target_ip"] is None and no_target["target_port"] is None  # was '' before
    assert no_target["target_status_code"] is None and no_target["request_transform_status"] is None


def test_historical_lines_agree_and_end_early() -> None:
    assert_raw_equals_curated(HISTORICAL)
    aloget = raw_row(HISTORICAL[0])
    assert aloget is not None and aloget["trace_id"] == "Root=1-11111be1-1110300f111111111aa1a1aa"
    names = [c.name for c in COLUMNS]
    assert all(aloget[name] is None for name in names[names.index("domain_name") :])


def test_every_prefix_and_extra_trailing_fields_agree() -> None:
    tokens = tokens_of(DOCUMENTED[1])
    lines = [" ".join(tokens[:count]) for count in range(18, len(tokens) + 1)]
    lines += [DOCUMENTED[1] + suffix for suffix in (' "-"', " -", ' "new-field" 42 "x y"', " ")]
    assert_raw_equals_curated(lines)
    assert raw_row(" ".join(tokens[:17])) is None  # too short: the lake quarantines it, RegexSerDe gives NULLs


def test_a_field_appended_to_the_declaration_gets_its_own_group() -> None:
    """Adding an ALB field is one LogField at the end of LOG_FIELDS: the regex then captures it, and lines
    without it still match (the field is optional, like every field after MIN_FIELDS)."""
    new_field = LogField("new_thing", True, (Column("new_thing", STRING, "a field AWS added"),))
    pattern = re.compile(raw_log_regex((*LOG_FIELDS, new_field)))
    assert pattern.groups == len(COLUMNS) + 1
    longer = pattern.fullmatch(DOCUMENTED[1] + ' "value" "later"')
    assert longer is not None and longer.groups()[-1] == "value"
    assert longer.groups()[:-1] == PATTERN.fullmatch(DOCUMENTED[1]).groups()  # type: ignore[union-attr]
    shorter = pattern.fullmatch(DOCUMENTED[1])
    assert shorter is not None and shorter.groups()[-1] is None


REQUESTS = [
    '"GET http://www.example.com:80/ "',  # ends with a space: no protocol (NULL, not '')
    '"- - -"',
    '"- - - "',
    '"-"',
    '""',
    '" "',
    '"GET"',
    '"GET "',
    '"GET  "',
    '"GET /x"',
    '"GET /x  "',
    '"GET /a b c HTTP/1.1"',  # a URL with spaces
    '" /x HTTP/1.1"',  # empty verb
    '"GET  HTTP/1.1"',  # empty URL
    '"- http://host:80- -"',
    '"-x -y -z"',
    '"GET /caf\\xC3\\xA9 HTTP/1.1"',
]
DOMAINS = ['" www.example.com"', '"www.example.com "', '"  "', '" -"', '"-"', '""', '"a b"', '" a  b "', '"\\x20x"']


def test_odd_requests_domains_and_addresses_agree() -> None:
    line = DOCUMENTED[1]
    lines = [with_fields(line, f12=request) for request in REQUESTS]
    lines += [with_fields(line, f18=domain) for domain in DOMAINS]
    lines += [with_fields(line, f3="2001:db8::1:443", f4="-"), with_fields(line, f3=":80", f9="-", f20="-")]
    lines += [with_fields(line, f13='"caf\\xC3\\xA9 \\x22q\\x22"', f23='"https://x/\\xFF"')]
    assert_raw_equals_curated(lines)
    ends_with_space = raw_row(lines[0])
    assert ends_with_space is not None and ends_with_space["request_proto"] is None
    leading_space = raw_row(lines[len(REQUESTS)])
    assert leading_space is not None and leading_space["domain_name"] == "www.example.com"


@settings(max_examples=400, deadline=None)
@given(st.text("a- ", max_size=9), st.text("a- ", max_size=6), st.sampled_from(["-", "1", "-1"]))
def test_any_request_and_domain_text_agrees(request: str, domain: str, priority: str) -> None:
    """Requests and domains made of the characters that drive the splits: letters, '-' and spaces."""
    assert_raw_equals_curated([with_fields(DOCUMENTED[1], f12=f'"{request}"', f18=f'"{domain}"', f20=priority)])


JAVA_PROGRAM = Path(__file__).parent / "native" / "RegexGroups.java"


def _python_groups(line: str) -> str:
    match = PATTERN.fullmatch(line)
    return "NOMATCH" if match is None else "\t".join("\\N" if g is None else g for g in match.groups())


@pytest.mark.slow
def test_java_regex_captures_what_python_re_captures(tmp_path: Path) -> None:
    """Athena runs the regex with java.util.regex: same groups (and NULLs) as the Python ``re`` of these tests."""
    java = shutil.which("java")
    if java is None:
        pytest.skip("no java on PATH (Debian: apt-get install default-jdk-headless)")
    rng = random.Random(2026)
    line = DOCUMENTED[1]
    lines = DOCUMENTED + HISTORICAL + [with_fields(line, f12=request) for request in REQUESTS]
    lines += [with_fields(line, f18=domain) for domain in DOMAINS]
    lines += [" ".join(tokens_of(line)[:count]) for count in range(16, len(tokens_of(line)) + 1)]
    lines += [line + ' "new" 1 "x y"', line + " ", line.replace('" "', '""', 1)]
    for _ in range(300):
        request = "".join(rng.choice("a- ") for _ in range(rng.randrange(10)))
        domain = "".join(rng.choice("a- ") for _ in range(rng.randrange(7)))
        lines.append(with_fields(line, f12=f'"{request}"', f18=f'"{domain}"'))
    regex_file = tmp_path / "regex.txt"
    regex_file.write_text(RAW_LOG_REGEX, encoding="utf-8")
    result = subprocess.run(
        [java, str(JAVA_PROGRAM), str(regex_file)],
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    java_groups = result.stdout.split("\n")[:-1]
    assert len(java_groups) == len(lines)
    for line_text, java_line in zip(lines, java_groups, strict=True):
        assert java_line == _python_groups(line_text), line_text
    assert sum(g == "NOMATCH" for g in java_groups) >= 3  # the too-short prefixes and the glued quotes
