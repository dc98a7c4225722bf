"""The latency sketch: every percentile within ALPHA of the exact nearest-rank percentile, merged by adding counts,
and read in SQL (UNNEST ... WITH ORDINALITY) as in Python."""

from __future__ import annotations

import math
import random

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from alblake.rollup import sketch
from alblake.rollup.sketch import (
    ALPHA,
    X_MIN,
    bucket_index,
    bucket_index_sql,
    bucket_indexes,
    bucket_value,
    bucket_value_sql,
    exact_quantile,
    merge,
    quantile,
)

PERMILLES = (500, 950, 990)


def sketch_of(values: list[float]) -> tuple[list[int], list[int]]:
    counts: dict[int, int] = {}
    for value in values:
        counts[bucket_index(value)] = counts.get(bucket_index(value), 0) + 1
    ordered = sorted(counts)
    return ordered, [counts[b] for b in ordered]


def relative_error(estimate: float | None, exact: float | None) -> float:
    assert estimate is not None and exact is not None
    return 0.0 if exact == estimate else abs(estimate - exact) / exact


_TIMES = st.integers(0, 4_000_000).map(lambda ms: ms / 1000)  # ALB logs seconds to the millisecond, up to 4000 s


@settings(max_examples=300, deadline=None)
@given(st.lists(_TIMES, min_size=1, max_size=300))
def test_every_percentile_is_within_alpha_of_the_exact_one(values: list[float]) -> None:
    buckets, counts = sketch_of(values)
    for permille in PERMILLES:
        assert relative_error(quantile(buckets, counts, permille), exact_quantile(values, permille)) <= ALPHA + 1e-12


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(_TIMES, max_size=50), min_size=1, max_size=8))
def test_merging_sketches_is_the_sketch_of_all_values(parts: list[list[float]]) -> None:
    merged = merge(sketch_of(part) for part in parts)
    assert merged == sketch_of([v for part in parts for v in part])


def test_bucket_values_bound_the_error_everywhere() -> None:
    x = X_MIN
    while x < 5000:
        for value in (x, math.nextafter(x, 0), x * 1.013):
            assert relative_error(bucket_value(bucket_index(value)), value) <= ALPHA + 1e-12
        x *= 1.37
    assert bucket_index(0.0) == 0 and bucket_value(0) == 0.0
    assert bucket_index(1e-9) == 1  # below X_MIN: bucket 1 (ALB never logs such times)


def test_vectorised_buckets_match_and_skip_missing_times() -> None:
    rng = random.Random(7)
    values = [round(rng.lognormvariate(-3, 2), 3) for _ in range(5000)] + [0.0, -1.0]
    arrow = bucket_indexes(pa.array([*values, None], pa.float64())).to_pylist()
    assert arrow[:-3] == [bucket_index(v) for v in values[:-2]]
    assert arrow[-3:] == [0, None, None]


def test_empty_and_degenerate_sketches() -> None:
    assert quantile([], [], 500) is None
    assert exact_quantile([], 500) is None
    assert quantile(*sketch_of([0.0] * 10), 990) == 0.0
    one = sketch_of([0.25])
    assert all(relative_error(quantile(*one, p), 0.25) <= ALPHA for p in PERMILLES)


def test_sql_bucket_value_and_index_match_python() -> None:
    con = duckdb.connect()
    buckets = list(range(0, 1500, 7))
    rows = con.sql(f"SELECT b, {bucket_value_sql('b')} FROM unnest({buckets}) AS t(b)").fetchall()
    assert all(math.isclose(value, bucket_value(b), rel_tol=1e-12) for b, value in rows)
    rng = random.Random(3)
    times = [round(rng.lognormvariate(-2, 2.5), 3) for _ in range(2000)] + [0.0, -1.0, 0.001, 4000.0]
    con.register("t", pa.table({"x": times}))
    found = dict(con.sql(f"SELECT x, {bucket_index_sql('x')} FROM t").fetchall())
    mismatched = [x for x in times if x >= 0 and found[x] != bucket_index(x)]
    assert len(mismatched) <= 2  # only floating-point ties at a bucket edge may differ
    assert found[-1.0] is None


QUANTILE_SQL = """
WITH cells AS (
  SELECT g, u.bucket AS bucket, sum(r.counts[u.i]) AS n
  FROM sketches r CROSS JOIN UNNEST(r.buckets) WITH ORDINALITY AS u(bucket, i)
  GROUP BY g, u.bucket
), cumulative AS (
  SELECT g, bucket, sum(n) OVER (PARTITION BY g ORDER BY bucket ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    AS upto, sum(n) OVER (PARTITION BY g) AS total
  FROM cells
)
SELECT g, min(CASE WHEN 1000 * upto >= {permille} * total THEN bucket END) AS bucket
FROM cumulative GROUP BY g ORDER BY g
"""


@pytest.mark.parametrize("permille", PERMILLES)
def test_sql_percentiles_over_merged_rows_match_python(permille: int) -> None:
    rng = random.Random(permille)
    groups: dict[str, list[list[float]]] = {}
    for g in ("a", "b", "c"):
        groups[g] = [[round(rng.expovariate(8), 3) for _ in range(rng.randrange(1, 40))] for _ in range(30)]
    rows = [(g, *sketch_of(part)) for g, parts in groups.items() for part in parts]
    table = pa.table({
        "g": [r[0] for r in rows],
        "buckets": pa.array([r[1] for r in rows], pa.list_(pa.int32())),
        "counts": pa.array([r[2] for r in rows], pa.list_(pa.int64())),
    })
    con = duckdb.connect()
    con.register("sketches", table)
    sql = QUANTILE_SQL.format(permille=permille)
    got = dict(con.sql(sql).fetchall())
    for g, parts in groups.items():
        merged = merge(sketch_of(part) for part in parts)
        assert bucket_value(got[g]) == quantile(*merged, permille)
    for dialect in ("trino", "duckdb"):
        sqlglot.parse_one(sql, read=dialect)


def test_gamma_literal_is_a_double_in_sql() -> None:
    assert sketch.GAMMA_SQL.endswith("E0") and float(sketch.GAMMA_SQL) == sketch.GAMMA
