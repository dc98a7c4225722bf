"""The native tokenizer's three byte scanners give byte-identical results, and the reasons it gives the lines it
rejects are those the reference path gives.

``_albtok.c`` finds field boundaries with SSE2 on x86_64, NEON on aarch64 (the Lambda) and a portable SWAR loop
elsewhere. ``tests/native/albtok_dump.c`` runs ``alb_scan`` with production's field layout, in small calls that
each resume where the last stopped, and prints everything it produced (rows, recorded lines with their rejection
codes, counts of the others). It is built three ways - host gcc (SSE2), host gcc with ``-U__SSE2__`` (SWAR) and
``aarch64-linux-gnu-gcc -static`` run under ``qemu-aarch64-static`` (NEON) - and the dumps of the same logs must
agree byte for byte, apart from their first line, which names the path the preprocessor selected.

A line the C code rejects is counted by the kind of reason its rejection code stands for, never parsed in Python
(beyond the lines the quarantine stores): ``test_rejections_are_counted_as_the_reference_path_rejects`` checks,
line by line over odd, mutated and junk lines, that the kind is the reference path's.
"""

from __future__ import annotations

import difflib
import os
import platform
import random
import shutil
import subprocess
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from alblake import native, parse, sample
from alblake.parse import reason_kind

DUMP_SOURCE = Path(__file__).parent / "native" / "albtok_dump.c"
CFLAGS = ("-O3", "-std=c99", "-Wall", "-Wextra", "-Werror", "-fno-fast-math")  # setup.py's, warnings fatal
TIMEOUT = 300  # seconds, per compiler or dump run


@dataclass(frozen=True)
class Build:
    path: str  # the byte-scanner path the dump must report
    compiler: str
    flags: tuple[str, ...] = ()
    runner: tuple[str, ...] = ()  # emulator the binary runs under


BUILDS = (
    Build("sse2", "gcc"),
    Build("swar", "gcc", ("-U__SSE2__",)),  # neither __SSE2__ nor __aarch64__: the portable fallback
    Build("neon", "aarch64-linux-gnu-gcc", ("-static",), ("qemu-aarch64-static",)),
)
DEBIAN_PACKAGES = {
    "gcc": "gcc",
    "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
    "qemu-aarch64-static": "qemu-user-static",
}


def require_tools() -> None:
    """Skip when a compiler or qemu is missing - but fail in CI, which installs them."""
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip(f"the SSE2 and SWAR builds need an x86_64 host, not {platform.machine()}")
    missing = [tool for tool in DEBIAN_PACKAGES if shutil.which(tool) is None]
    if missing:
        packages = " ".join(DEBIAN_PACKAGES[tool] for tool in missing)
        message = f"{', '.join(missing)} not found (Debian: apt-get install {packages})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def compile_dump(build: Build, directory: Path, source_override: Path | None = None) -> Path:
    """albtok_dump built for ``build``; ``source_override`` replaces _albtok.c (to check that a divergence fails)."""
    binary = directory / f"albtok_dump_{build.path}"
    override = (f'-DALBTOK_SOURCE="{source_override}"',) if source_override is not None else ()
    command = [build.compiler, *CFLAGS, *build.flags, *override, "-o", str(binary), str(DUMP_SOURCE)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=TIMEOUT)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr}"
    return binary


def compile_all(directory: Path, source_override: Path | None = None) -> dict[Build, Path]:
    with ThreadPoolExecutor(len(BUILDS)) as pool:
        binaries = pool.map(lambda build: compile_dump(build, directory, source_override), BUILDS)
        return dict(zip(BUILDS, binaries, strict=True))


def run_dump(build: Build, binary: Path, log: Path, rejected_limit: int = -1) -> list[str]:
    """The dump's lines, after checking that the binary took the path its build is meant to select."""
    command = [*build.runner, str(binary), str(log), str(rejected_limit)]
    result = subprocess.run(command, capture_output=True, check=False, timeout=TIMEOUT)
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{result.stderr.decode()}"
    lines = result.stdout.decode("ascii").splitlines()
    assert lines[0] == f"path {build.path}", f"{build} selected another scanner: {lines[0]!r}"
    assert lines[-1] == "end", f"{build}: truncated dump"
    return lines


def first_difference(expected: Sequence[str], actual: Sequence[str], context: int = 8) -> str:
    """A unified diff around the first differing line (a full diff of two large dumps is unreadable)."""
    index = next((i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b), None)
    index = min(len(expected), len(actual)) if index is None else index
    row = next((line for line in reversed(expected[:index]) if line.startswith("row ")), "the header")
    window = slice(max(0, index - context), index + 4 * context)
    diff = difflib.unified_diff(expected[window], actual[window], "expected", "actual", lineterm="", n=context)
    return f"first difference at dump line {index + 2}, in {row}:\n" + "\n".join(diff)


def production_layout() -> list[str]:
    """The layout section albtok_dump must print: parse._native_spec of every field, as alb_scan sees it."""
    value_types = {pa.int32(): "int32", pa.int64(): "int64", pa.float64(): "float64"}
    lines = [f"min_fields {parse.MIN_FIELDS}", f"max_line_bytes {parse.MAX_LINE_BYTES}"]
    strings = values = 0
    for index, field in enumerate(parse._FIELDS):
        spec = parse._native_spec(field)
        lines.append(f"field {index} {field.name} kind={spec.kind} flags={spec.flags}")
        for output in spec.outputs:
            if output.arrow_type == pa.string():
                lines.append(f"  string {strings} {output.column} gather={output.gather_flags}")
                strings += 1
            else:
                type_name = "int64" if pa.types.is_timestamp(output.arrow_type) else value_types[output.arrow_type]
                lines.append(f"  value {values} {output.column} {type_name}")
                values += 1
    return lines


@dataclass(frozen=True)
class Summary:
    lines: int
    rows: int
    recorded: list[tuple[int, int, int, int]]  # line index, start, end, rejection code
    unrecorded: dict[int, int]  # lines not recorded, by rejection code
    calls: int


def summarize(dump: Sequence[str]) -> Summary:
    counts: dict[str, int] = {}
    recorded, unrecorded, calls = [], {}, 0
    for line in dump:
        if line.startswith("recorded line "):  # recorded line <index> [<start>, <end>) code <code> "<text>"
            index, start, end, _, code = line.split(" ", 7)[2:7]
            recorded.append((int(index), int(start.strip("[,")), int(end.strip(")")), int(code)))
        elif line.startswith("unrecorded code "):  # unrecorded code <code>: <count>
            code, count = line.removeprefix("unrecorded code ").split(": ")
            unrecorded[int(code)] = int(count)
        elif line.startswith("call "):
            calls += 1
        elif line.startswith(("lines ", "rows ")):
            key, value = line.split(" ")
            counts[key] = int(value)
    return Summary(counts["lines"], counts["rows"], recorded, unrecorded, calls)


# ------------------------------------------------------------------------------------------------ the logs

# A valid line, field by field (quoted fields with their quotes); the odd lines below change one field each.
BASE_FIELDS = (
    "https",
    "2026-11-24T09:00:00.123456Z",
    "app/web-prod/50dc6c495c0c9188",
    "203.0.113.7:51234",
    "10.0.1.10:80",
    "0.001",
    "0.012",
    "0.000",
    "200",
    "200",
    "123",
    "4567",
    '"GET https://web-prod.example.com:443/index.html HTTP/1.1"',
    '"curl/8.5.0"',
    "ECDHE-RSA-AES128-GCM-SHA256",
    "TLSv1.2",
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/73e2d6bc24d8a067",
    '"Root=1-6742ec10-0123456789abcdef01234567"',
    '"web-prod.example.com"',
    '"arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"',
    "0",
    "2026-11-24T08:59:59.987654Z",
    '"forward"',
    '"-"',
    '"-"',
    '"10.0.1.10:80"',
    '"200"',
    '"-"',
    '"-"',
    "TID_0123456789abcdef",
    '"-"',
    '"-"',
    '"-"',
)
TYPE, TIME, ELB, CLIENT, TARGET, REQUEST_TIME = 0, 1, 2, 3, 4, 5
ELB_STATUS, RECEIVED, REQUEST, USER_AGENT, CIPHER, TRACE, DOMAIN = 8, 10, 12, 13, 14, 17, 18
RULE, CREATED, REDIRECT, ERROR_REASON, TRANSFORMED_URI = 20, 21, 23, 24, 31

# Texts that replace one field of BASE_FIELDS, one line each: timestamps (leap days, bounds, fractions), numbers,
# addresses, requests, escapes (decodable or not), quotes, required fields. Many are declined, some accepted.
# fmt: off
FIELD_VARIANTS: dict[int, tuple[str, ...]] = {
    TIME: (
        "2024-02-29T23:59:59.999999Z", "2000-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
        "2100-02-29T12:00:00.5Z", "0001-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z",
        "2026-11-24T23:59:60Z", "2026-11-24T24:00:00Z", "2026-11-24T09:00:00.1234567Z", "2026-11-24T09:00:00.Z",
        "2026-11-24 09:00:00Z", "2026-11-24T09:00:00+00:00", "2026-13-01T00:00:00Z", "2026-04-31T00:00:00Z",
        "2026-11-24T24:00:00Z", "2026-11-24T23:60:00Z", "2026-11-24T09:00:00.5", "2026-11-24T09:00:00.ZZ",
    ),
    CREATED: ("2024-02-29T00:00:00.1Z", "1969-12-31T23:59:59.999999Z"),
    REQUEST_TIME: (
        "0.1234567890123456789012", "0.12345678901234567890123", "9007199254740992", "9007199254740993",
        "900719925474099.2", "-0.000", "-0", "0.30000000000000004", "123456789.987654321", "1e3", "+5", ".5", "5.",
        "nan", "inf", "-", "--1", "1.2.3", "0x10", "00.5", "-1", "", "1.7976931348623157", "0.0000000000000000000001",
        "1" + "0" * 399, "-" + "9" * 310, "9" * 309, "0" * 400 + "1.5", "0." + "0" * 400 + "1", "infinity", "1.",
    ),
    ELB_STATUS: (
        "2147483647", "2147483648", "-2147483648", "-2147483649", "99999999999", "007", "-0", "+1", "1.0", "", "-",
        "0000000000200", "0" * 40 + "2147483647", "-0000000002147483648", "1" + "0" * 400,
    ),
    RECEIVED: (
        "999999999999999999", "-999999999999999999", "9223372036854775807", "-1", "9223372036854775808",
        "-9223372036854775808", "-9223372036854775809", "0009223372036854775807", "18446744073709551616",
    ),
    RULE: ("-1",),
    CLIENT: (
        "[2001:db8::1]:443", "2001:db8::1:443", ":80", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65535", "1.2.3.4:99999",
        "1.2.3.4:123456", "1.2.3.4:-1", "1.2.3.4:8a", "-", "fe80::1%eth0:80",
    ),
    TARGET: ("-",),
    REQUEST: (
        '"GET  HTTP/1.1"', '"GET /x"', '"GET /x "', '"-"', '""', '" "', '"  "', '"abc"', '"- - -"',
        '"GET - HTTP/1.1"', '"GET /a b c HTTP/1.1"', r'"\x47ET /caf\xC3\xA9 HTTP/1.1"', r'"GET /q?\x22x\x22 -"',
    ),
    USER_AGENT: (
        r'"caf\xC3\xA9"', r'"bad \xFF\xFE"', r'"\x4"', r'"\xZZ"', r'"back\\slash"', r'"ends with backslash\"',
        r'"\x00nul"', r'"\xF0\x9F\x98\x80 emoji"', r'"\xED\xA0\x80 surrogate"', r'"\xC0\xAF overlong"',
        r'"\xF4\x90\x80\x80 too big"', r'"\xE2\x82 truncated"', r'"\x5Cx41 escaped escape"', '"stray "quote"',
        '"unterminated', 'bare"quote', '"x"y', '"' + "Mozilla/5.0 \\x22long\\x22 " * 120 + '"',
        '"caf\u00e9 \u3000 \u00fc"', '"\U0001F600 \\x41"', '"\u00e9\\xC3\\xA9"',
    ),
    CIPHER: ('ab"c',),
    TRACE: (r'"Root=1-\x41"',),
    DOMAIN: ('"  web.example.com  "', r'" \x41 "', '"   "', '" - "', r'"\x20x\x20"'),
    REDIRECT: (r'"https://x/\x22q\x22"',),
    ERROR_REASON: (r'"Lambda\x20error"',),
    TRANSFORMED_URI: (r'"/p\x20q"',),
    TYPE: ("-", '""', '"-"'),
    ELB: ("-", "app/x", "app//id", "/web/id", "app/web/", "app/web/id/extra", '"app/web/id"'),
}
# fmt: on


def odd_lines() -> list[bytes]:
    """Lines that take the scanner's rarer paths (each newline-free; the caller picks LF or CRLF)."""
    lines = []
    for index, texts in FIELD_VARIANTS.items():
        for text in texts:
            fields = list(BASE_FIELDS)
            fields[index] = text
            lines.append(" ".join(fields).encode())
    base = " ".join(BASE_FIELDS).encode()
    for byte in (0x00, 0x01, 0x09, 0x0B, 0x1F, 0x7F, 0x80, 0xBF, 0xC0, 0xFF):  # controls; invalid UTF-8 is declined
        lines.append(base.replace(b"curl/8.5.0", b"curl/" + bytes([byte]) + b"8.5.0"))  # in a quoted field
        lines.append(base.replace(b"TLSv1.2", b"TLSv1." + bytes([byte])))  # in a bare field
    lines += [
        base.replace(b"curl/8.5.0", "café ünïcode".encode()),  # valid UTF-8, but ALB would have escaped it
        base.replace(b"TLSv1.2", b"TLS\rv1.2"),  # a carriage return inside the line
        base + b"\r",  # a trailing CR: a CRLF ending, or CR CR LF where the line gets one
        base.replace(b"https ", b"https  "),  # an empty field
        " ".join(BASE_FIELDS[:25]).encode(),  # pre-2020 logs: 25 fields
        " ".join(BASE_FIELDS[:24]).encode(),  # mid-2018 logs: fields 21-25 arrived in steps
        " ".join(BASE_FIELDS[:20]).encode(),  # 2017-2018 logs end after chosen_cert_arn
        " ".join(BASE_FIELDS[:18]).encode(),  # 2016-2017 logs end after trace_id
        " ".join(BASE_FIELDS[:17]).encode(),  # too few fields
        base + b' "extra" fields 1 2 3 "4 5" -',  # later fields are ignored
        b"",
        b"   ",
        b"-",
        b'"',
        b"\\",
        b"x" * 40,
        b"x",
        b'a "b" c',
        b'"a"b',
        b'"a" "b',
        "\u00e9".encode(),
        "\u3000 \u2028\x85\xa0".encode(),  # only whitespace, as Python's str.strip() sees it
        b"\x1c\x1d\x1e\x1f\t\x0b\x0c",
        "\u200b".encode(),  # a zero-width space is not whitespace to Python
        b"\xe2\x82",  # a truncated sequence
        b" ".join([b"x"] * 17),
        b" ".join([b"x"] * 50),
        base.replace(b"https ", "h\u00e9ttps ".encode()),  # valid UTF-8 in the type: a row
        base.replace(b"https ", b"- "),
        base.replace(b"https ", b"\xef\xbb\xbfhttps "),  # a BOM inside the object is a character of the line
    ]
    return lines


def write_logs(directory: Path) -> list[Path]:
    """A large mixed log (sample lines, odd lines, LF and CRLF), the odd lines alone, and a few tiny blocks."""
    rng = random.Random(2026)
    start = datetime(2024, 2, 28, 23, 50, tzinfo=UTC)  # crosses a leap day
    lines = [
        line.encode()
        for lb in sample.LOAD_BALANCERS
        for line in sample.generate_lines(700, lb=lb, start=start, seconds=1800, rng=rng, malformed_every=41)
    ]
    odd = odd_lines()
    for copy in range(3):  # each odd line at three different places (alignments), once with CRLF
        for line in odd:
            lines.insert(rng.randrange(len(lines) + 1), line + b"\r" if copy == 1 else line)
    mixed = b"".join(line + (b"\r\n" if index % 9 == 4 else b"\n") for index, line in enumerate(lines))
    logs = {
        "mixed.log": mixed,
        "odd.log": b"\n".join(odd),  # no final newline: the dump appends one, after a line ending in 'x'
        "short.log": b'a"b',
        "backslash.log": b"\\",
        "empty.log": b"",
    }
    for name, content in logs.items():
        (directory / name).write_bytes(content)
    return [directory / name for name in logs]


def micros(when: datetime) -> int:
    """A timestamp as alb_scan stores it: microseconds since the epoch."""
    return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


# ------------------------------------------------------------------------------------------------ the test


REJECTED_LIMITS = (-1, 7)  # record every line; record 7 rejected lines and count the others


@pytest.mark.slow
def test_sse2_neon_and_swar_builds_dump_identical_scans(tmp_path: Path) -> None:
    require_tools()
    binaries = compile_all(tmp_path)
    for log in write_logs(tmp_path):
        for limit in REJECTED_LIMITS:
            dumps = {build: run_dump(build, binary, log, limit) for build, binary in binaries.items()}
            reference_build, reference = BUILDS[0], dumps[BUILDS[0]]
            for build, dump in dumps.items():
                if dump[1:] != reference[1:]:  # (pytest's own diff of two large dumps would be slow and unreadable)
                    pytest.fail(
                        f"{log.name}, limit {limit}: the {build.path} build differs from the "
                        f"{reference_build.path} build:\n" + first_difference(reference[1:], dump[1:])
                    )
            layout = production_layout()
            assert reference[1 : 1 + len(layout)] == layout, "albtok_dump.c's field layout is not parse._native_spec's"
            check_summary(log, limit, summarize(reference), reference)


def check_summary(log: Path, limit: int, summary: Summary, reference: list[str]) -> None:
    content = log.read_bytes()
    assert summary.lines == content.count(b"\n") + (not content.endswith(b"\n"))
    assert summary.rows + len(summary.recorded) + sum(summary.unrecorded.values()) == summary.lines
    if log.name == "mixed.log":
        assert summary.rows > 2000 and summary.calls > 30  # calls stopped on full rows and resumed
        assert len(summary.recorded) > 100 if limit < 0 else sum(summary.unrecorded.values()) > 100
        assert f"  time: {micros(datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC))}" in reference
        assert '  request_url: "https://api-prod.example.com:443/search?q=caf\\xC3\\xA9"' in reference
        if native.available() and parse._SCANNER is not None:  # the ctypes binding gives the same split
            scans = list(parse._SCANNER.scan(content, None if limit < 0 else limit))
            assert sum(scan.lines for scan in scans) == summary.lines
            assert sum(len(scan.columns["type"]) for scan in scans) == summary.rows
            binding = [
                (int(index), int(start), int(end), int(code))
                for scan in scans
                for index, (start, end), code in zip(
                    scan.recorded, scan.recorded_bounds.tolist(), scan.recorded_codes, strict=True
                )
            ]
            assert binding == summary.recorded
            unrecorded: dict[int, int] = {}
            for scan in scans:
                for code, count in scan.unrecorded.items():
                    unrecorded[code] = unrecorded.get(code, 0) + count
            assert unrecorded == summary.unrecorded


# ------------------------------------------------------------------------------------- rejections counted in C

_EDITS = ('"', " ", "\r", "-", ".", "x", "\\", "\t", ":", "é", "\u3000", "\x00", "0" * 320, "/", "24", "nan")


def mutated_lines(rng: random.Random, count: int) -> list[bytes]:
    """Sample lines (some already malformed) with a few random edits each: inserted, deleted or replaced text, or
    the line cut short; a tenth of them in Latin-1 (invalid UTF-8 wherever they hold a non-ASCII character)."""
    start = datetime(2024, 2, 28, 23, 50, tzinfo=UTC)
    lb = sample.LOAD_BALANCERS[0]
    pool = sample.generate_lines(300, lb=lb, start=start, seconds=3600, rng=rng, malformed_every=7)
    lines = []
    for _ in range(count):
        line = rng.choice(pool)
        for _ in range(rng.randint(1, 4)):
            position, text = rng.randrange(len(line) + 1), rng.choice(_EDITS)
            line = rng.choice(
                [
                    line[:position] + text + line[position:],
                    line[:position] + line[position + 1 :],
                    line[:position] + text + line[position + len(text) :],
                    line[:position],
                ]
            )
        lines.append(line.encode("latin-1", "replace") if rng.random() < 0.1 else line.encode())
    return lines


def kinds_of(parsed: parse.ParsedBlock) -> Counter[str]:
    """Every quarantined line of a parse, by kind of reason (listed and counted alike)."""
    return Counter(reason_kind(q.reason) for q in parsed.quarantined) + parsed.unrecorded


def test_rejections_are_counted_as_the_reference_path_rejects() -> None:
    """Line by line: what the native engine counts without a Python parse is what the exact path quarantines,
    by kind of reason; and what it keeps, the exact path keeps."""
    if not native.available():
        pytest.fail("the native tokenizer is not built: pip install -e . compiles it")
    for line in [*odd_lines(), *mutated_lines(random.Random(19), 4000)]:
        block = line + b"\n"
        counted = parse.parse_block(block, engine="native", record_limit=0)
        exact = parse.parse_block(block, engine="exact")
        assert (kinds_of(counted), counted.table.to_pylist()) == (kinds_of(exact), exact.table.to_pylist()), line


JUNK = {
    "tiny lines": b"x\n" * 1000,
    "one character": b"".join(bytes([c]) + b"\n" for c in range(1, 256) if c not in (10,)),
    "blank lines": b"\n \n\t\n\r\n" + "\u3000\n".encode() * 10,
    "fields of garbage": b" ".join([b"GET", b"-", b'"a b"', b"0.1", b"app/a/b", b"1.2.3.4:80"] * 9) + b"\n",
    "malformed sample lines": ("\n".join(sample.MALFORMED) + "\n").encode(),
    "elb not of the form": (" ".join(BASE_FIELDS).replace(" app/", " not-app-", 1) + "\n").encode(),
    "cut lines": b"".join(" ".join(BASE_FIELDS).encode()[:cut] + b"\n" for cut in range(0, 400, 7)),
    "times beyond a double": b"".join(
        " ".join(BASE_FIELDS).replace(" 0.001 ", f" {number} ", 1).encode() + b"\n"
        for number in ("1" + "0" * 399, "-" + "9" * 309, "17976931348623159" + "0" * 292, "2" + "0" * 308 + ".5")
    ),
    "impossible times": b"".join(
        " ".join(BASE_FIELDS).replace("2026-11-24T09:00:00.123456Z", time).encode() + b"\n"
        for time in ("2026-11-24T24:00:00Z", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00.5Z", "0000-01-01T00:00:00Z")
    ),
}


@pytest.mark.parametrize("name", sorted(JUNK))
def test_junk_is_counted_in_c_without_parsing_lines_in_python(name: str) -> None:
    """A junk line costs no Python parse beyond the quarantine's stored lines: with nothing to record, the native
    engine passes no line of junk to the exact path (each line would cost ~10 microseconds there)."""
    if not native.available():
        pytest.fail("the native tokenizer is not built: pip install -e . compiles it")
    counted = parse.parse_block(JUNK[name], engine="native", record_limit=0)
    assert counted.quarantined == []
    assert (counted.table.num_rows, counted.unrecorded.total()) == (0, JUNK[name].count(b"\n"))
    assert counted.unrecorded == kinds_of(parse.parse_block(JUNK[name], engine="exact"))


def test_every_rejection_reason_of_the_c_code_has_a_kind() -> None:
    assert set(parse._REJECTION_REASONS) == set(native.REJECTION_REASONS[1:])  # all but "undecided"
    assert {parse._rejection_kind(reason * native.MAX_FIELDS + 5) for reason in range(1, 14)} >= {
        "empty line",
        "expected at least N fields, found N",
        "number out of range in request_processing_time",
        "invalid number in request_processing_time",
    }
