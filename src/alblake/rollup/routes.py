"""Route templates: ``/users/8812/orders/9f1c2ab0e4d7`` -> ``/users/{id}/orders/{id}``, from one rule list.

A request URL becomes its *route template*: the query string is dropped, the scheme and host are dropped, and
every path segment that looks like an identifier becomes ``{id}``. ``ID_RULES`` is the one list of what looks
like an identifier; three renderings follow from it and a test holds them equal on a corpus of real URL shapes:

- :func:`route_template`: one URL, Python ``re`` (the reference, easy to read);
- :func:`route_templates`: an Arrow array at once (RE2 through ``pyarrow.compute``), what the rollup uses;
- :func:`route_template_sql`: a SQL expression over the curated table's ``request_url``, the same text on Athena
  (Trino: Java regular expressions) and DuckDB (RE2), so a query of ``alb_logs`` groups by the same routes.

The patterns keep to what Java, RE2 and Python read alike: ASCII character classes, ``^`` and ``\\z`` (the end
of the text: ``$`` differs, Java and Python also match before a final newline), no ``.``, no lookaround, no
backreference. Every quantified class is followed by a character it cannot contain, so a backtracking engine
(Java) stays linear on long segments. A segment matches a rule when it is at least ``min_length`` characters
long and (for rules with a pattern) ``regexp_like`` finds the pattern.

A path deeper than ``MAX_SEGMENTS`` segments keeps its first ``MAX_SEGMENTS`` and ends in ``/{*}`` (SQL has no
loop). A URL without a path (``http://host:80``) is ``/``; a request target that is not a path (``*``,
``host:443`` of a CONNECT) is kept as it is. A NULL URL has a NULL template.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ID = "{id}"
DEEPER = "{*}"
MAX_SEGMENTS = 8
OTHER_ROUTE = "(other)"  # the rollup's fold for routes beyond its cap (alblake.rollup.table)
SCHEME = "^[A-Za-z][A-Za-z0-9+.-]*://"
TEMPLATE_SLICE_BYTES = 4 << 20  # URLs templated at a time (see route_templates)


@dataclass(frozen=True)
class IdRule:
    """Segments that are identifiers: at least ``min_length`` characters and, if given, matching ``pattern``."""

    name: str
    pattern: str | None
    min_length: int = 0
    example: str = ""


ID_RULES: tuple[IdRule, ...] = (
    IdRule("number", r"^[0-9]+\z", example="8812"),
    IdRule(
        "uuid",
        r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\z",
        example="3f1c2ab0-e4d7-4c0e-9a51-2f6b8d0c7e11",
    ),
    # long hex with a digit (commit and object ids; 'deadbeef' or 'facade' are words and stay)
    IdRule("hex", r"^[A-Fa-f]*[0-9][0-9A-Fa-f]*\z", min_length=8, example="9f1c2ab0e4d7"),
    IdRule("email", r"^[^@/]+@[^@/.]+[.][^@/]+\z", example="jane.doe@example.com"),
    # base64-ish tokens (URL-safe alphabet, dots of a JWT) with a digit
    IdRule("token", r"^[A-Za-z_=+.~-]*[0-9][A-Za-z0-9_=+.~-]*\z", min_length=20, example="dXNlcjoxMjM0NTY3ODkw"),
    # mixed codes with at least three digits: order numbers, hashed asset names ('v1', 'html5' stay)
    IdRule(
        "code",
        r"^[A-Za-z_.~-]*[0-9][A-Za-z_.~-]*[0-9][A-Za-z_.~-]*[0-9][A-Za-z0-9_.~-]*\z",
        min_length=8,
        example="ORD-2026-000123",
    ),
    IdRule("long", None, min_length=64, example="a segment of 64 characters or more"),
)


# ------------------------------------------------------------------------------------------ Python (re)


def _python_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern.replace(r"\z", r"\Z"))  # Python spells the end of the text \Z


_PY_RULES = tuple(
    (rule.min_length, None if rule.pattern is None else _python_pattern(rule.pattern)) for rule in ID_RULES
)
_PY_SCHEME = re.compile(SCHEME)


def is_id(segment: str) -> bool:
    """Whether a path segment is an identifier by ``ID_RULES``."""
    return any(len(segment) >= size and (p is None or p.search(segment)) for size, p in _PY_RULES)


def route_path(url: str) -> str:
    """The path of a request URL: no query string, no scheme and host; ``/`` when empty."""
    part = url.split("?", 1)[0]
    if _PY_SCHEME.search(part):
        fields = part.split("/")
        part = part[len(fields[0]) + len(fields[2]) + 2 :]
    return part or "/"


@lru_cache(maxsize=65536)
def route_template(url: str | None) -> str | None:
    """The route template of one request URL (the reference the Arrow and SQL renderings are tested against)."""
    if url is None:
        return None
    path = route_path(url)
    if not path.startswith("/"):
        return path
    segments = path.split("/")[1:]
    kept = [ID if is_id(s) else s for s in segments[:MAX_SEGMENTS]]
    deeper = [DEEPER] if len(segments) > MAX_SEGMENTS else []
    return "/" + "/".join(kept + deeper)


# ------------------------------------------------------------------------------------------------ Arrow


def _id_mask(segments: pa.Array) -> np.ndarray:
    lengths = pc.utf8_length(segments).to_numpy(zero_copy_only=False)
    mask = np.zeros(len(segments), dtype=bool)
    for rule in ID_RULES:
        long_enough = lengths >= rule.min_length
        if rule.pattern is None:
            mask |= long_enough
            continue
        candidates = np.flatnonzero(long_enough & ~mask)
        if len(candidates):
            found = pc.match_substring_regex(segments.take(pa.array(candidates)), rule.pattern)
            mask[candidates[found.to_numpy(zero_copy_only=False)]] = True
    return mask


def route_templates(urls: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``route_template`` of every URL of a string array, vectorised (RE2 through Arrow), a slice of about
    ``TEMPLATE_SLICE_BYTES`` of URLs at a time: each step copies the text, so memory follows the slice, not the
    array (20,000 distinct 1.5 KB URLs at once took 170 MB)."""
    if isinstance(urls, pa.ChunkedArray):
        urls = urls.combine_chunks() if urls.num_chunks else pa.array([], pa.string())
    urls = urls.cast(pa.string())
    step = max(1, int(len(urls) * TEMPLATE_SLICE_BYTES / max(urls.nbytes, 1)))
    if step >= len(urls):
        return _route_templates(urls)
    return pa.concat_arrays([_route_templates(urls.slice(start, step)) for start in range(0, len(urls), step)])


def _route_templates(urls: pa.Array) -> pa.Array:
    part = pc.list_element(pc.split_pattern(urls, "?", max_splits=1), 0)
    without_host = pc.replace_substring_regex(part, "^[^/]*//[^/]*", "", max_replacements=1)
    path = pc.if_else(pc.match_substring_regex(part, SCHEME), without_host, part)
    path = pc.if_else(pc.equal(path, ""), "/", path)
    # each distinct path once (traffic repeats its paths: '/', '/health', ...)
    encoded = pc.dictionary_encode(path)
    distinct = encoded.dictionary
    templates = pc.if_else(pc.starts_with(distinct, "/"), _template_paths(_first_segments(distinct)), distinct)
    return templates.take(encoded.indices)


def _first_segments(paths: pa.Array) -> pa.Array:
    """The paths cut after their first ``MAX_SEGMENTS + 1`` segments: the template keeps ``MAX_SEGMENTS`` and needs
    only to know that there are more. A URL of 1.5 KB with a hundred segments then costs no more than a short one."""
    deep = f"^((?:/[^/]*){{{MAX_SEGMENTS + 1}}})(?s:.+)"
    return pc.replace_substring_regex(paths, deep, r"\1", max_replacements=1)


def _template_paths(paths: pa.Array) -> pa.Array:
    """Templates of the paths, aligned with them (meaningful where a path starts with '/'; NULL stays NULL)."""
    lists = pc.split_pattern(paths, "/")
    segments = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists).to_numpy()
    starts = np.concatenate([[0], np.flatnonzero(np.diff(parents)) + 1]) if len(parents) else np.zeros(0, np.int64)
    first = np.zeros(len(parents), dtype=np.int64)
    first[starts] = starts
    position = np.arange(len(parents)) - np.maximum.accumulate(first)  # 0: the '' before the leading '/'
    counts = np.bincount(parents, minlength=len(paths)) - 1  # segments after the leading '/'
    values = pc.if_else(pa.array(_id_mask(segments) & (position > 0)), ID, segments)
    keep = np.flatnonzero(position <= MAX_SEGMENTS)
    deeper = np.flatnonzero(counts > MAX_SEGMENTS)
    # the kept segments, then one '{*}' per deeper path, ordered by path (stable: segments keep their order)
    owners = np.concatenate([parents[keep], deeper])
    order = np.argsort(owners, kind="stable")
    taken = pa.concat_arrays([values.take(pa.array(keep)), pa.array([DEEPER] * len(deeper), pa.string())])
    offsets = np.concatenate([[0], np.cumsum(np.bincount(owners, minlength=len(paths)))])
    rebuilt = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), taken.take(pa.array(order)))
    joined = pc.binary_join(rebuilt, "/")
    return pc.if_else(pc.is_null(paths), pa.scalar(None, pa.string()), joined)


# -------------------------------------------------------------------------------------------------- SQL


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _grouped_rules() -> list[tuple[int, str | None]]:
    """The rules as (min_length, pattern) with the patterns of one min_length joined into one alternation."""
    by_length: dict[int, list[str | None]] = {}
    for rule in ID_RULES:
        by_length.setdefault(rule.min_length, []).append(rule.pattern)
    grouped: list[tuple[int, str | None]] = []
    for size, patterns in by_length.items():
        if None in patterns:
            grouped.append((size, None))
        else:
            bodies = [str(p).removeprefix("^").removesuffix(r"\z") for p in patterns]
            grouped.append((size, bodies[0] if len(bodies) == 1 else "^(?:" + "|".join(bodies) + r")\z"))
    return [(size, p if p is None or p.startswith("^") else "^" + p + r"\z") for size, p in grouped]


def is_id_sql(segment: str) -> str:
    """SQL: whether the segment expression is an identifier by ``ID_RULES``."""
    tests = []
    for size, pattern in _grouped_rules():
        parts = [f"length({segment}) >= {size}"] if size else []
        if pattern is not None:
            parts.append(f"regexp_like({segment}, {_sql_string(pattern)})")
        tests.append(" AND ".join(parts) if len(parts) == 1 else "(" + " AND ".join(parts) + ")")
    return " OR ".join(tests)


def route_path_sql(url: str = "request_url") -> str:
    """SQL: the path of the URL expression (as :func:`route_path`)."""
    part = f"split_part({url}, '?', 1)"
    without_host = f"substr({part}, length(split_part({part}, '/', 1)) + length(split_part({part}, '/', 3)) + 3)"
    path = f"CASE WHEN regexp_like({part}, {_sql_string(SCHEME)}) THEN {without_host} ELSE {part} END"
    return f"coalesce(nullif({path}, ''), '/')"


def segment_count_sql(path: str) -> str:
    """SQL: the number of segments of a path expression (its '/' characters)."""
    return f"(length({path}) - length(replace({path}, '/', '')))"


def route_template_sql(url: str = "request_url", *, path: str | None = None, count: str | None = None) -> str:
    """SQL: the route template of the URL expression, the same text on Athena and DuckDB (DuckDB needs the
    ``regexp_like`` macro of :data:`DUCKDB_MACROS`).

    Alone it repeats the path expression many times (~30 KB); give ``path`` (a column holding
    ``route_path_sql``) and ``count`` (one holding ``segment_count_sql`` of it) from a subquery to keep it short
    and fast, and group by the path before templating where rows repeat paths."""
    p = path or route_path_sql(url)
    count = count or segment_count_sql(p)
    pieces = []
    for i in range(1, MAX_SEGMENTS + 1):
        segment = f"split_part({p}, '/', {i + 1})"
        pieces.append(
            f"CASE WHEN {count} >= {i} THEN '/' || CASE WHEN {is_id_sql(segment)} THEN '{ID}' ELSE {segment} END "
            "ELSE '' END"
        )
    pieces.append(f"CASE WHEN {count} > {MAX_SEGMENTS} THEN '/{DEEPER}' ELSE '' END")
    templated = " || ".join(pieces)
    return f"CASE WHEN {url} IS NULL THEN NULL WHEN substr({p}, 1, 1) <> '/' THEN {p} ELSE {templated} END"


# DuckDB has regexp_matches (RE2, a search like Trino's regexp_like) under another name.
DUCKDB_MACROS = ("CREATE OR REPLACE TEMP MACRO regexp_like(s, p) AS regexp_matches(s, p)",)


def top_routes(routes: Iterable[tuple[str, int]], cap: int) -> set[str]:
    """The ``cap`` most requested routes (ties: the smaller template first), so the choice depends only on
    the counts."""
    ordered = sorted(routes, key=lambda item: (-item[1], item[0]))
    return {route for route, _ in ordered[:cap]}
