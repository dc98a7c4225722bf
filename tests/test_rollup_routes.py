"""Route templates: one rule list, three renderings (Python ``re``, Arrow/RE2, SQL for DuckDB and Athena) that
give the same template on real URL shapes, and patterns that mean the same in Java (Athena), RE2 and Python."""

from __future__ import annotations

import gzip
import random
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import expressions as exp

from alblake import schema_render
from alblake.parse import parse_block
from alblake.rollup import routes
from alblake.rollup.routes import (
    DUCKDB_MACROS,
    ID_RULES,
    MAX_SEGMENTS,
    is_id,
    route_path_sql,
    route_template,
    route_template_sql,
    route_templates,
    segment_count_sql,
)
from alblake.sample import write_sample_logs

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parent.parent


def corpus() -> list[tuple[str, str]]:
    """(request_url, expected template or '') of tests/data/url_shapes.tsv."""
    pairs = []
    for line in (DATA / "url_shapes.tsv").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            url, _, expected = line.partition("\t")
            pairs.append((url, expected))
    return pairs


def _urls_of(lines: list[bytes]) -> list[str | None]:
    urls: list[str | None] = parse_block(b"\n".join(lines) + b"\n").table["request_url"].to_pylist()
    return urls


def _documented_urls() -> list[str | None]:
    lines = [b for b in (DATA / "aws_documented_examples.log").read_bytes().splitlines() if b.strip()]
    historical = [b for b in (DATA / "historical_lines.log").read_bytes().splitlines() if b.strip()]
    return _urls_of(lines + historical)


def _sample_urls(tmp_path: Path) -> list[str | None]:
    logs = write_sample_logs(tmp_path, files=3, lines_per_file=200, seed=3)
    lines = [line for path in logs for line in gzip.decompress(path.read_bytes()).splitlines() if line.strip()]
    return _urls_of(lines)


def duckdb_templates(urls: list[str | None], *, standalone: bool = False) -> list[str | None]:
    """The SQL rendering run by DuckDB, row by row in the input's order."""
    con = duckdb.connect()
    for macro in DUCKDB_MACROS:
        con.execute(macro)
    con.register("t", pa.table({"i": list(range(len(urls))), "request_url": pa.array(urls, pa.string())}))
    if standalone:
        sql = f"SELECT i, {route_template_sql('request_url')} AS route FROM t ORDER BY i"
    else:
        template = route_template_sql("request_url", path="route_path", count="route_segments")
        sql = (
            f"SELECT i, {template} AS route FROM ("
            f"SELECT i, request_url, route_path, {segment_count_sql('route_path')} AS route_segments FROM ("
            f"SELECT i, request_url, {route_path_sql('request_url')} AS route_path FROM t)) ORDER BY i"
        )
    return [row[1] for row in con.sql(sql).fetchall()]


# ------------------------------------------------------------------------------------- the three agree


@pytest.mark.parametrize(("url", "expected"), [p for p in corpus() if p[1]])
def test_corpus_templates(url: str, expected: str) -> None:
    assert route_template(url) == expected


def test_python_arrow_and_sql_agree_on_real_url_shapes(tmp_path: Path) -> None:
    urls: list[str | None] = [url for url, _ in corpus()]
    urls += _documented_urls() + _sample_urls(tmp_path) + [None]
    python = [route_template(u) for u in urls]
    assert route_templates(pa.array(urls, pa.string())).to_pylist() == python
    assert duckdb_templates(urls) == python
    assert duckdb_templates(urls[:40], standalone=True) == python[:40]
    assert {"/", "/users/{id}/orders/{id}"} <= set(python)


_SEGMENT_CHARS = "aZ09fF-_.~@%:+= \n\r\tü☃/"


_PATHS = st.lists(st.text(_SEGMENT_CHARS, max_size=24), max_size=MAX_SEGMENTS + 3).map("/".join)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(_PATHS, st.sampled_from(["", "?q=1", "?"])), min_size=1, max_size=12))
def test_any_path_gets_the_same_template_everywhere(paths: list[tuple[str, str]]) -> None:
    urls: list[str | None] = [f"https://h.example:443/{path}{query}" for path, query in paths]
    python = [route_template(url) for url in urls]
    assert route_templates(pa.array(urls)).to_pylist() == python
    assert duckdb_templates(urls) == python


def test_segments_with_line_breaks_are_not_identifiers_by_an_anchor_slip() -> None:
    # '$' would match before a final newline in Java and Python but not in RE2: the rules use \z
    assert is_id("8812")
    assert not is_id("8812\n")
    assert route_template("http://h/a/8812\n/b") == "/a/8812\n/b"


def test_templates_of_a_chunked_and_an_empty_array() -> None:
    chunked = pa.chunked_array([["http://h/a/1"], ["http://h/a/2", None]])
    assert route_templates(chunked).to_pylist() == ["/a/{id}", "/a/{id}", None]
    assert route_templates(pa.array([], pa.string())).to_pylist() == []


def test_deep_paths_keep_their_first_segments() -> None:
    deep = "http://h/" + "/".join(str(i) for i in range(20))
    assert route_template(deep) == "/" + "/".join(["{id}"] * MAX_SEGMENTS) + "/{*}"


# ------------------------------------------------------------------------------ portable patterns and SQL

_PORTABLE_PATTERN = re.compile(r"^\^(?:[^.$\\]|\\z$)*$")  # anchored at ^, ends with \z, no '.', '$' or escape


def test_patterns_keep_to_what_java_re2_and_python_read_alike() -> None:
    patterns = [rule.pattern for rule in ID_RULES if rule.pattern is not None] + [routes.SCHEME]
    for pattern in patterns:
        body = re.sub(r"\[[^\]]*\]", "C", pattern)  # character classes may hold '.'
        assert _PORTABLE_PATTERN.match(body + ("" if pattern.endswith(r"\z") else r"\z")), pattern
        assert "'" not in pattern and "(?=" not in pattern and "(?!" not in pattern


JAVA_PROGRAM = Path(__file__).parent / "native" / "RegexFind.java"


def _segments_for_java() -> list[str]:
    rng = random.Random(2026)
    segments = [s for url, _ in corpus() for s in routes.route_path(url).split("/")]
    segments += [rule.example for rule in ID_RULES]
    segments += ["8812\n", "8812\r", "8812\u2028", "a\nb@c.d", "x" * 70, "12345678", "ABCDEF12", "v1", "html5"]
    for _ in range(400):
        segments.append("".join(rng.choice(_SEGMENT_CHARS.replace("/", "")) for _ in range(rng.randrange(30))))
    return segments


@pytest.mark.slow
def test_java_finds_what_python_re_and_re2_find(tmp_path: Path) -> None:
    """Athena's regexp_like uses Java pattern syntax: each grouped rule pattern of the SQL (and the scheme test)
    finds the same segments in Java, Python ``re`` and RE2 (pyarrow, as DuckDB)."""
    java = shutil.which("java")
    if java is None:
        pytest.skip("no java on PATH (Debian: apt-get install default-jdk-headless)")
    patterns = [p for _, p in routes._grouped_rules() if p is not None] + [routes.SCHEME]
    segments = _segments_for_java()
    (tmp_path / "patterns.txt").write_text("\n".join(patterns) + "\n", encoding="utf-8")
    result = subprocess.run(
        [java, str(JAVA_PROGRAM), str(tmp_path / "patterns.txt")],
        input="".join(s.encode().hex() + "\n" for s in segments),
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    java_lines = result.stdout.splitlines()
    assert len(java_lines) == len(segments)
    array = pa.array(segments)
    for index, pattern in enumerate(patterns):
        python = [bool(re.search(pattern.replace(r"\z", r"\Z"), s)) for s in segments]
        re2 = pa.compute.match_substring_regex(array, pattern).to_pylist()
        java_found = [line[index] == "1" for line in java_lines]
        assert python == re2 == java_found, pattern


_KEYWORDS = {"and", "or", "not", "in", "as", "from", "when", "then", "else", "over", "by", "cast", "exists", "on"}


def _called_functions(sql: str) -> set[str]:
    return {m.lower() for m in re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(", sql)} - _KEYWORDS


ROUTE_FUNCTIONS = {"split_part", "substr", "length", "replace", "regexp_like", "coalesce", "nullif", "sum", "count"}


def test_route_sql_is_one_text_for_trino_and_duckdb() -> None:
    query = (ROOT / schema_render.ROUTES_SQL_PATH).read_text(encoding="utf-8")
    assert query == schema_render.routes_sql()
    body = re.sub(r"--[^\n]*", "", query)
    assert _called_functions(body) <= ROUTE_FUNCTIONS
    for dialect in ("trino", "duckdb"):
        tree = sqlglot.parse_one(body, read=dialect)
        assert {t.name for t in tree.find_all(exp.Table)} == {"alb_logs"}
    trino = sqlglot.parse_one(body, read="trino")
    assert [f.name for f in trino.find_all(exp.Anonymous)] == []
    assert "$" not in body  # \z, never $: see the module docstring


def test_route_sql_query_over_a_lake_matches_python(tmp_path: Path) -> None:
    from alblake.analysis import connect
    from alblake.ingest.runner import ingest_paths

    logs = write_sample_logs(tmp_path / "logs", files=3, lines_per_file=300, seed=5)
    ingest_paths([str(p) for p in logs], tmp_path / "lake", jobs=1)
    con = connect(tmp_path / "lake")
    for macro in DUCKDB_MACROS:
        con.execute(macro)
    query = re.sub(r"--[^\n]*", "", schema_render.routes_sql())
    got = dict(con.sql(query).fetchall())
    urls = [r[0] for r in con.sql("SELECT request_url FROM alb_logs").fetchall()]
    expected: dict[str | None, int] = {}
    for url in urls:
        expected[route_template(url)] = expected.get(route_template(url), 0) + 1
    assert got == expected
