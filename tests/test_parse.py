"""Unit tests of the parser on the AWS-documented lines and on each odd case of docs/ALB_LOG_FORMAT.md."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alblake.parse import parse_block, parse_line_fields
from alblake.schema import ARROW_SCHEMA, COLUMN_NAMES
from tests.parse_helpers import DOC_LINE, rows_of, tokens_of

pytestmark = pytest.mark.usefixtures("fast_engine")  # every test runs on each fast engine

TARGET_GROUP_ARN = "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067"


def test_documented_http_line_exact_values() -> None:
    rows, problems = rows_of(DOC_LINE)
    assert problems == []
    assert rows == [
        {
            "type": "http",
            "time": datetime(2018, 7, 2, 22, 23, 0, 186641, tzinfo=UTC),
            "elb": "app/my-loadbalancer/50dc6c495c0c9188",
            "client_ip": "192.168.131.39",
            "client_port": 2817,
            "target_ip": "10.0.0.1",
            "target_port": 80,
            "request_processing_time": 0.0,
            "target_processing_time": 0.001,
            "response_processing_time": 0.0,
            "elb_status_code": 200,
            "target_status_code": 200,
            "received_bytes": 34,
            "sent_bytes": 366,
            "request_verb": "GET",
            "request_url": "http://www.example.com:80/",
            "request_proto": "HTTP/1.1",
            "user_agent": "curl/7.46.0",
            "ssl_cipher": None,
            "ssl_protocol": None,
            "target_group_arn": TARGET_GROUP_ARN,
            "trace_id": "Root=1-58337262-36d228ad5d99923122bbe354",
            "domain_name": None,
            "chosen_cert_arn": None,
            "matched_rule_priority": 0,
            "request_creation_time": datetime(2018, 7, 2, 22, 22, 48, 364000, tzinfo=UTC),
            "actions_executed": "forward",
            "redirect_url": None,
            "lambda_error_reason": None,
            "target_port_list": "10.0.0.1:80",
            "target_status_code_list": "200",
            "classification": None,
            "classification_reason": None,
            "conn_trace_id": "TID_1234abcd5678ef90",
            "transformed_host": None,
            "transformed_uri": None,
            "request_transform_status": None,
        }
    ]


def test_every_documented_example(documented_lines: list[bytes]) -> None:
    rows, problems = rows_of(*documented_lines)
    assert problems == []
    assert [r["type"] for r in rows] == ["http", "https", "h2", "ws", "wss", "http", "http"]
    https, h2 = rows[1], rows[2]
    assert (https["ssl_cipher"], https["ssl_protocol"]) == ("ECDHE-RSA-AES128-GCM-SHA256", "TLSv1.2")
    assert https["domain_name"] == "www.example.com"
    assert https["chosen_cert_arn"].endswith("certificate/12345678-1234-1234-1234-123456789012")
    assert https["actions_executed"] == "authenticate,forward"
    assert https["transformed_host"] == "m.example.com"
    assert https["request_transform_status"] == "TransformSuccess"
    assert (https["request_processing_time"], https["target_processing_time"]) == (0.086, 0.048)
    assert h2["redirect_url"] == "https://example.com:80/"
    assert h2["request_proto"] == "HTTP/2.0"
    assert rows[3]["elb_status_code"] == 101 and rows[3]["user_agent"] is None
    no_target, lambda_error = rows[5], rows[6]
    assert (no_target["target_ip"], no_target["target_port"], no_target["target_port_list"]) == (None, None, None)
    assert lambda_error["elb_status_code"] == 502 and lambda_error["target_status_code"] is None
    assert lambda_error["lambda_error_reason"] == "LambdaInvalidResponse"


def test_fast_and_exact_paths_agree_on_documented_lines(documented_lines: list[bytes]) -> None:
    assert rows_of(*documented_lines) == rows_of(*documented_lines, fast=False)


def _old_format(fields: int) -> str:
    return " ".join(tokens_of(DOC_LINE)[:fields])


@pytest.mark.parametrize("fields", [25, 29, 30])
def test_older_formats_are_valid_and_missing_fields_null(fields: int) -> None:
    rows, problems = rows_of(_old_format(fields), _old_format(fields))
    assert problems == []
    assert len(rows) == 2
    assert rows[0]["lambda_error_reason"] is None and rows[0]["actions_executed"] == "forward"
    assert rows[0]["target_port_list"] == ("10.0.0.1:80" if fields > 25 else None)
    assert rows[0]["conn_trace_id"] == ("TID_1234abcd5678ef90" if fields >= 30 else None)
    assert rows[0]["transformed_host"] is None


def test_mixed_formats_in_one_block() -> None:
    rows, problems = rows_of(DOC_LINE, _old_format(25), DOC_LINE + ' "future" -', _old_format(29))
    assert problems == []
    assert len(rows) == 4
    assert sorted(r["conn_trace_id"] or "" for r in rows) == ["", "", "TID_1234abcd5678ef90", "TID_1234abcd5678ef90"]


def test_new_trailing_fields_are_ignored_not_rejected() -> None:
    rows, problems = rows_of(DOC_LINE + " -", DOC_LINE + ' "x" "y y" z')
    assert problems == []
    assert [r["request_transform_status"] for r in rows] == [None, None]
    rows_future_only, _ = rows_of(DOC_LINE + ' "new-field"', DOC_LINE + ' "new-field"')
    assert len(rows_future_only) == 2 and rows_future_only[0]["client_port"] == 2817


def test_ipv6_client_and_target_split_on_last_colon() -> None:
    line = DOC_LINE.replace("192.168.131.39:2817", "2001:db8:85a3::8a2e:370:7334:52814").replace(
        " 10.0.0.1:80 0.000", " fe80::1ff:fe23:4567:890a:8080 0.000"
    )
    rows, problems = rows_of(line)
    assert problems == []
    assert (rows[0]["client_ip"], rows[0]["client_port"]) == ("2001:db8:85a3::8a2e:370:7334", 52814)
    assert (rows[0]["target_ip"], rows[0]["target_port"]) == ("fe80::1ff:fe23:4567:890a", 8080)


def test_spaces_in_url_are_kept() -> None:
    line = DOC_LINE.replace('"GET http://www.example.com:80/ HTTP/1.1"', '"GET http://x:80/a b/c d?q=1 2 HTTP/1.1"')
    rows, _ = rows_of(line)
    assert (rows[0]["request_verb"], rows[0]["request_url"], rows[0]["request_proto"]) == (
        "GET",
        "http://x:80/a b/c d?q=1 2",
        "HTTP/1.1",
    )


@pytest.mark.parametrize(
    ("request_field", "expected"),
    [
        ("- http://www.example.com:80- -", (None, "http://www.example.com:80-", None)),
        ("- - -", (None, None, None)),
        ("GET http://x:80/ HTTP/1.1 ", ("GET", "http://x:80/ HTTP/1.1", None)),
        ("GET http://x:80/", ("GET", "http://x:80/", None)),
        ("garbage ", (None, "garbage", None)),
        ("BREW coffee://pot:80/ HTCPCP/1.0", ("BREW", "coffee://pot:80/", "HTCPCP/1.0")),
        ("garbage", (None, "garbage", None)),
        ("GET http://www.example.com:80/ ", ("GET", "http://www.example.com:80/", None)),
        ("GET /a b/c ", ("GET", "/a b/c", None)),
        ("GET  HTTP/1.1", ("GET", None, "HTTP/1.1")),
        ("", (None, None, None)),
    ],
)
def test_odd_request_lines(request_field: str, expected: tuple[str | None, ...]) -> None:
    line = DOC_LINE.replace('"GET http://www.example.com:80/ HTTP/1.1"', f'"{request_field}"')
    for fast in (True, False):
        rows, problems = rows_of(line, fast=fast)
        assert problems == []
        assert (rows[0]["request_verb"], rows[0]["request_url"], rows[0]["request_proto"]) == expected


def test_hex_escapes_are_decoded_when_valid_utf8() -> None:
    line = DOC_LINE.replace('"curl/7.46.0"', r'"Mozilla \x22quoted\x22 back\x5Cslash caf\xC3\xA9"').replace(
        "http://www.example.com:80/ ", r"http://www.example.com:80/?q=\x22a\x22 "
    )
    rows, _ = rows_of(line)
    assert rows[0]["user_agent"] == 'Mozilla "quoted" back\\slash café'
    assert rows[0]["request_url"] == 'http://www.example.com:80/?q="a"'
    invalid, _ = rows_of(DOC_LINE.replace('"curl/7.46.0"', r'"bad \xFF byte"'))
    assert invalid[0]["user_agent"] == r"bad \xFF byte"


def test_empty_quoted_fields_and_leading_space_domain() -> None:
    line = DOC_LINE.replace('"forward"', '""').replace(
        '"Root=1-58337262-36d228ad5d99923122bbe354" "-"',
        '"Root=1-58337262-36d228ad5d99923122bbe354" " www.example.com"',
    )
    rows, problems = rows_of(line)
    assert problems == []
    assert rows[0]["actions_executed"] == ""
    assert rows[0]["domain_name"] == "www.example.com"


def test_negative_one_values_are_kept() -> None:
    line = DOC_LINE.replace("0.000 0.001 0.000 200 200", "-1 -1 -1 460 -").replace(
        " 0 2018-07-02T22:22", " -1 2018-07-02T22:22"
    )
    rows, _ = rows_of(line)
    row = rows[0]
    assert (row["request_processing_time"], row["target_processing_time"], row["response_processing_time"]) == (
        -1,
        -1,
        -1,
    )
    assert (row["elb_status_code"], row["target_status_code"], row["matched_rule_priority"]) == (460, None, -1)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "empty line"),
        ("not a log line", "expected at least 18 fields, found 4"),
        (DOC_LINE.replace('"curl/7.46.0"', '"curl/7.46.0'), "quoted field"),
        (DOC_LINE.replace(" 200 200 ", " 2xx 200 "), "invalid integer in elb_status_code"),
        (DOC_LINE.replace("2018-07-02T22:23:00.186641Z", "yesterday"), "invalid timestamp in time"),
        (DOC_LINE.replace(" 34 366 ", " 34 99999999999999999999 "), "integer out of range in sent_bytes"),
        (DOC_LINE.replace("0.000 0.001", "1" + "0" * 399 + " 0.001"), "number out of range in request_processing_time"),
        (DOC_LINE.replace("0.001 0.000", "-" + "9" * 399 + ".5 0.000"), "number out of range in target_proc"),
        (DOC_LINE.replace("192.168.131.39:2817", "192.168.131.39"), "malformed client:port"),
        (DOC_LINE.replace("app/my-loadbalancer/50dc6c495c0c9188", "-"), "missing elb"),
        (DOC_LINE.replace("app/my-loadbalancer/50dc6c495c0c9188", "nonsense"), "elb is not of the form"),
        (DOC_LINE.encode().replace(b"curl", b"cu\xffrl"), "invalid UTF-8"),
        (DOC_LINE.replace('"curl/7.46.0"', '"curl\r/7.46.0"'), "carriage return"),
        (DOC_LINE.replace('"curl/7.46.0"', '"curl/7.46.0"x'), "no space after quoted field"),
        (DOC_LINE.replace(" - - arn", ' a"b c"d - arn'), "stray quote"),
        (DOC_LINE.replace("0.000 0.001 0.000", "nan 0.001 0.000"), "invalid number in request_processing_time"),
        (DOC_LINE.replace("0.000 0.001 0.000", "0.000 1e3 0.000"), "invalid number in target_processing_time"),
        (DOC_LINE.replace("0.000 0.001 0.000", "0.000 0.001 .5"), "invalid number in response_processing_time"),
        (DOC_LINE.replace(" 200 200 ", " +200 200 "), "invalid integer in elb_status_code"),
        (DOC_LINE.replace("2018-07-02T22:23:00.186641Z", "2018-07-02T22:23:00.186641"), "invalid timestamp in time"),
        (DOC_LINE.replace("2018-07-02T22:23:00.186641Z", "2018-02-30T22:23:00.186641Z"), "invalid timestamp in time"),
    ],
)
def test_unparseable_lines_are_quarantined_with_reason(line: str | bytes, reason: str) -> None:
    for fast in (True, False):
        rows, problems = rows_of(DOC_LINE, line, DOC_LINE, fast=fast)
        assert len(rows) == 2
        assert len(problems) == 1
        number, why = problems[0]
        assert number == 2
        assert why.startswith(reason) or reason in why


def test_crlf_line_endings_are_accepted() -> None:
    for fast in (True, False):
        rows, problems = rows_of(DOC_LINE + "\r", DOC_LINE + "\r", fast=fast)
        assert problems == []
        assert [r["request_transform_status"] for r in rows] == [None, None]


def test_one_bad_value_does_not_change_its_neighbours() -> None:
    bad = DOC_LINE.replace(" 34 366 ", " 34 36x ")
    fast_rows, fast_problems = rows_of(DOC_LINE, bad, DOC_LINE)
    assert fast_problems == [(2, "invalid integer in sent_bytes: '36x'")]
    assert fast_rows == rows_of(DOC_LINE, DOC_LINE, fast=False)[0]


def test_quarantine_keeps_raw_bytes_and_line_numbers() -> None:
    raw = b"\x00\x01binary \xfe\xff garbage"
    parsed = parse_block(DOC_LINE.encode() + b"\n" + raw + b"\n", first_line_number=41)
    assert parsed.table.num_rows == 1
    assert [(q.line_number, q.raw) for q in parsed.quarantined] == [(42, raw)]


def test_block_output_follows_schema_and_partition_keys() -> None:
    parsed = parse_block((DOC_LINE + "\n").encode() * 3)
    assert parsed.table.schema == ARROW_SCHEMA
    assert tuple(parsed.table.column_names) == COLUMN_NAMES
    assert parsed.elb_name.to_pylist() == ["my-loadbalancer"] * 3
    assert parsed.hour_start.to_pylist() == [datetime(2018, 7, 2, 22, tzinfo=UTC)] * 3


def test_parse_line_fields_pads_old_lines() -> None:
    values = parse_line_fields(_old_format(25).encode())
    assert len(values) == 33
    assert values[25:] == [None] * 8


def test_bad_quotes_on_neighbouring_lines() -> None:
    # Line 1 has an odd number of quotes; line 3's user agent closes with '"x' glued to the next field. Both are
    # quarantined on both paths, and the valid line between them is kept.
    odd = DOC_LINE.replace('"curl/7.46.0"', '"curl/7.46.0')
    glued = DOC_LINE.replace('"curl/7.46.0" - -', '"curl/7.46.0 "x - -')
    for fast in (True, False):
        rows, problems = rows_of(odd, DOC_LINE, glued, fast=fast)
        assert len(rows) == 1
        assert [number for number, _ in problems] == [1, 3]


# Values at the edges of what the fast engines convert themselves; each is substituted into one field of
# DOC_LINE (0-based field index) and the fast engine must keep or quarantine the line exactly like the
# exact reference path, with the same values.
_EDGE_VALUES: list[tuple[int, str]] = [
    (1, "2020-02-29T23:59:59.999999Z"),  # leap day
    (1, "2019-02-29T00:00:00Z"),  # not a leap year
    (1, "1900-02-29T00:00:00Z"),  # century, not a leap year
    (1, "2000-02-29T00:00:00.5Z"),  # 400-year leap year, one fraction digit
    (1, "0001-01-01T00:00:00Z"),
    (1, "0000-01-01T00:00:00Z"),
    (1, "2018-07-02T24:00:00Z"),
    (1, "2018-07-02T22:23:60Z"),
    (1, "2018-13-02T22:23:00Z"),
    (1, "2018-07-02T22:23:00.1234567Z"),  # seven fraction digits
    (1, "2018-07-02T22:23:00.Z"),
    (1, "2018-07-02 22:23:00Z"),
    (3, "[2001:db8::1]:443"),
    (3, "2001:db8::1:65535"),
    (3, "10.0.0.1:123456"),
    (3, "10.0.0.1:-1"),
    (3, ":80"),
    (3, "10.0.0.1"),
    (4, "-"),
    (4, '"10.0.0.1:80"'),
    (5, "-1"),
    (5, "0.1234567890123456789"),  # more digits than a double holds exactly
    (5, "9007199254740993"),  # 2**53 + 1
    (5, "123456789.000000001"),
    (5, "00.5"),
    (5, "-0.000"),
    (5, "1e3"),
    (5, ".5"),
    (5, "5."),
    (5, "nan"),
    (5, "inf"),
    (5, "infinity"),
    (5, "1" + "0" * 308),  # the largest power of ten a double holds
    (5, "1" + "0" * 309),  # infinity as a float: quarantined, as an integer out of range is
    (5, "17976931348623158" + "0" * 292),  # rounds down to the largest double
    (5, "17976931348623159" + "0" * 292),  # rounds up to infinity
    (5, "-" + "9" * 400),
    (5, "0." + "0" * 400 + "1"),  # rounds to zero, a finite number
    (8, "2147483647"),
    (8, "2147483648"),
    (8, "-2147483648"),
    (8, "-2147483649"),
    (8, "000000000200"),
    (8, "+200"),
    (10, "999999999999999999"),
    (10, "9223372036854775807"),
    (10, "9223372036854775808"),
    (10, "-9223372036854775808"),
    (12, '"GET http://x/\\x20a\\x2Fb HTTP/1.1"'),
    (12, '"\\x47ET /ok HTTP/1.1"'),
    (13, '"caf\\xC3\\xA9 \\xED\\xA0\\x80 surrogate"'),  # decoded bytes are a UTF-16 surrogate: kept as logged
    (13, '"overlong \\xC0\\xAF"'),
    (13, '"max \\xF4\\x8F\\xBF\\xBF beyond \\xF4\\x90\\x80\\x80"'),
    (13, '"truncated \\xE2\\x82"'),
    (13, '"\\\\x41 \\xZZ \\x4"'),
    (13, '"tab\there"'),
    (18, '"  padded.example.com  "'),
    (18, '" \\x20leading escaped space"'),
    (18, '"-"'),
    (18, '" - "'),
    (2, "app/name"),
    (2, "app//id"),
    (2, "/name/id"),
    (2, "net/name/id/extra"),
    (0, "-"),
    (20, "-1"),
]


@pytest.mark.parametrize(("field_index", "value"), _EDGE_VALUES)
def test_fast_engine_equals_exact_path_on_edge_values(field_index: int, value: str) -> None:
    fields = tokens_of(DOC_LINE)
    fields[field_index] = value
    line = " ".join(fields)
    assert rows_of(line, DOC_LINE) == rows_of(line, DOC_LINE, fast=False)


def test_edge_values_exercise_both_outcomes() -> None:
    """The edge table is worth something only if it holds both kept and quarantined lines."""
    kept = quarantined = 0
    for field_index, value in _EDGE_VALUES:
        fields = tokens_of(DOC_LINE)
        fields[field_index] = value
        _, problems = rows_of(" ".join(fields), fast=False)
        kept, quarantined = kept + (not problems), quarantined + bool(problems)
    assert kept >= 20 and quarantined >= 15


def test_rows_keep_line_order_when_the_exact_path_keeps_a_declined_line() -> None:
    fields = tokens_of(DOC_LINE)
    lines = []
    for sent in ("1", "9223372036854775807", "3"):  # the 19-digit count is left to the exact path
        fields[11] = sent
        lines.append(" ".join(fields))
    rows, problems = rows_of(lines[0], "garbage", *lines[1:])
    assert problems == [(2, "expected at least 18 fields, found 1")]
    assert [row["sent_bytes"] for row in rows] == [1, 9223372036854775807, 3]


def test_native_engine_converts_valid_lines_itself(documented_lines: list[bytes]) -> None:
    """Declining is always correct (the exact path takes over), so agreement tests cannot see a native engine
    that declines too much; this one can: valid lines must not reach the exact path."""
    import random

    from alblake import native
    from alblake.parse import _SCANNER
    from alblake.sample import LOAD_BALANCERS, generate_lines

    if not native.available() or _SCANNER is None:
        pytest.fail("the native tokenizer is not built")
    generated = generate_lines(
        2000, lb=LOAD_BALANCERS[0], start=datetime(2026, 2, 28, 23, 0, tzinfo=UTC), seconds=7200,
        rng=random.Random(7),
    )
    unusual = [  # valid lines that a careless scanner would decline: raw UTF-8 text, integers with leading zeros,
        # times with more digits than a double holds exactly
        DOC_LINE.replace("curl/7.46.0", "caf\u00e9 \U0001F600 \u3000"),
        DOC_LINE.replace("0.000 0.001 0.000", "0.30000000000000004 9007199254740993 0.0000000000000000000000001"),
        DOC_LINE.replace("0.000 0.001 0.000", "-0.000 " + "9" * 300 + ".5 0." + "1" * 200),
        DOC_LINE.replace("http ", "h\u00e9ttp ", 1).replace(".com:80/", ".com:80/\u00fc\\xC3\\xA9"),
        DOC_LINE.replace(" 200 200 ", " 0000000000200 -00000000000000000001 ")
        .replace(" 34 366 ", " 034 9223372036854775807 "),
    ]
    lines = [*documented_lines, *(line.encode() for line in [*unusual, *generated])]
    block = b"\n".join(lines) + b"\n"
    [scan] = _SCANNER.scan(block)
    assert (scan.lines, scan.recorded.tolist()) == (len(lines), [])
    assert parse_block(block).table.equals(parse_block(block, engine="exact").table)


def test_line_length_bound_is_the_same_on_every_engine() -> None:
    from alblake.parse import MAX_LINE_BYTES

    def padded(total: int) -> str:
        return DOC_LINE.replace('"curl/7.46.0"', '"' + "a" * (total - len(DOC_LINE) + len("curl/7.46.0")) + '"')

    at_bound, over = padded(MAX_LINE_BYTES), padded(MAX_LINE_BYTES + 1)
    assert (len(at_bound), len(over)) == (MAX_LINE_BYTES, MAX_LINE_BYTES + 1)
    rows, problems = rows_of(at_bound, over)
    assert len(rows) == 1 and len(rows[0]["user_agent"]) == MAX_LINE_BYTES - len(DOC_LINE) + len("curl/7.46.0")
    assert problems == [(2, f"line longer than {MAX_LINE_BYTES} bytes")]
