"""Historical log formats: ALB lines of 2016-2018 end after trace_id (18 fields), chosen_cert_arn (20) or one of
the fields added in mid-2018. Every prefix of at least MIN_FIELDS fields is a row with the absent columns NULL,
on every engine; fewer fields, or a quoted field glued to the next, stay quarantined.

Real lines come from public fixtures and issues (tests/data/historical_lines.log names each source); the field
cuts of the AWS-documented line cover every prefix length.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alblake.parse import parse_block
from alblake.schema import COLUMN_NAMES, KNOWN_FIELDS, LOG_FIELDS, MIN_FIELDS
from tests.parse_helpers import tokens_of

ENGINES = ["native", "arrow", "exact"]
DATA = Path(__file__).parent / "data"
HISTORICAL = [
    line
    for line in (DATA / "historical_lines.log").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]
DOC_HTTPS_LINE = (DATA / "aws_documented_examples.log").read_text().splitlines()[1]


def parsed(lines: list[str], engine: str) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    result = parse_block("".join(line + "\n" for line in lines).encode(), engine=engine)  # type: ignore[arg-type]
    return result.table.to_pylist(), [(q.line_number, q.reason) for q in result.quarantined]


def columns_of_fields(count: int) -> list[str]:
    """The curated columns filled by the first ``count`` fields of a line."""
    return [column.name for field in LOG_FIELDS[:count] for column in field.columns]


def test_the_format_floor_is_18_fields() -> None:
    assert MIN_FIELDS == 18
    assert LOG_FIELDS[MIN_FIELDS - 1].name == "trace_id"


@pytest.mark.parametrize("engine", ENGINES)
def test_real_historical_lines(engine: str) -> None:
    rows, problems = parsed(HISTORICAL, engine)
    # A hand-edited elb and a 7-digit port: quarantined for what is wrong with them, not for their length.
    assert problems == [(2, "elb is not of the form type/name/id"), (4, "malformed client:port")]
    aloget, tcp, cloudwatch = rows
    assert aloget["time"] == datetime(2017, 9, 9, 0, 55, 0, 228196, tzinfo=UTC)
    assert aloget["elb"] == "app/albname/12a34bc6d78e9f0"
    assert (aloget["client_ip"], aloget["client_port"]) == ("111.222.10.240", 57965)
    assert (aloget["request_verb"], aloget["request_proto"]) == ("GET", "HTTP/1.1")
    assert aloget["request_url"] == "http://wwww.host.com:80/path/?a=1&b=2&c=3"
    assert aloget["sent_bytes"] == 111603
    assert aloget["trace_id"] == "Root=1-11111be1-1110300f111111111aa1a1aa"
    assert all(aloget[name] is None for name in COLUMN_NAMES[COLUMN_NAMES.index("domain_name") :])
    # "- - - ": a request line ending in a space has no protocol; '-' status codes are NULL.
    assert (tcp["request_verb"], tcp["request_url"], tcp["request_proto"]) == (None, "- -", None)
    assert (tcp["elb_status_code"], tcp["target_status_code"], tcp["user_agent"]) == (None, None, None)
    assert tcp["request_processing_time"] == 0.001069
    assert cloudwatch["target_ip"] is None and cloudwatch["target_port"] is None
    assert cloudwatch["request_processing_time"] == -1.0
    assert cloudwatch["chosen_cert_arn"] == "session-reused" and cloudwatch["matched_rule_priority"] == 41
    assert cloudwatch["redirect_url"] == "https://domain.ca:443/en-ca/"
    assert cloudwatch["lambda_error_reason"] is None and cloudwatch["target_port_list"] is None


@pytest.mark.parametrize("engine", ENGINES)
def test_every_prefix_of_at_least_18_fields_is_a_row_with_the_rest_null(engine: str) -> None:
    tokens = tokens_of(DOC_HTTPS_LINE)
    assert len(tokens) == KNOWN_FIELDS
    full = parsed([DOC_HTTPS_LINE], "exact")[0][0]
    cuts = list(range(MIN_FIELDS, KNOWN_FIELDS + 1))
    rows, problems = parsed([" ".join(tokens[:count]) for count in cuts], engine)
    assert problems == []
    for count, row in zip(cuts, rows, strict=True):
        present = columns_of_fields(count)
        assert {k: row[k] for k in present} == {k: full[k] for k in present}, count
        assert all(row[k] is None for k in COLUMN_NAMES if k not in present), count


@pytest.mark.parametrize("engine", ENGINES)
def test_each_block_of_one_historical_shape_parses_alike(engine: str) -> None:
    """A whole object of 18- or 20-field lines (the fast engines' common case for a backfill)."""
    tokens = tokens_of(DOC_HTTPS_LINE)
    for count in (18, 20):
        lines = [" ".join(tokens[:count]).replace("2817", str(port)) for port in range(1000, 1200)]
        rows, problems = parsed(lines, engine)
        assert problems == [] and len(rows) == 200
        assert [row["client_port"] for row in rows] == list(range(1000, 1200))
        assert {row["chosen_cert_arn"] for row in rows} == ({None} if count == 18 else {tokens[19].strip('"')})


@pytest.mark.parametrize("engine", ENGINES)
def test_truly_malformed_short_lines_stay_quarantined(engine: str) -> None:
    tokens = tokens_of(DOC_HTTPS_LINE)
    glued_20 = " ".join(tokens[:18]) + " " + tokens[18] + tokens[19]  # "domain""cert": no space between
    glued_18 = " ".join(tokens[:17]) + tokens[17]  # arn"Root=..."
    rows, problems = parsed([" ".join(tokens[:17]), glued_20, glued_18, " ".join(tokens[:5])], engine)
    assert rows == []
    assert problems == [
        (1, "expected at least 18 fields, found 17"),
        (2, "no space after quoted field 19"),
        (3, "stray quote in field 17"),
        (4, "expected at least 18 fields, found 5"),
    ]
