"""A mergeable latency sketch: counts of requests per log-scale bucket of ``target_processing_time``.

Scheme (the one of DDSketch, with relative accuracy ``ALPHA``): ``GAMMA = (1 + ALPHA) / (1 - ALPHA)``; bucket 0
holds exact zeros (ALB logs times to the millisecond, so every sub-millisecond time reads ``0.000``); bucket
``k >= 1`` holds the times ``x`` with ``X_MIN * GAMMA**(k-2) < x <= X_MIN * GAMMA**(k-1)`` (times below
``X_MIN`` go to bucket 1). A bucket's value is ``2 * X_MIN * GAMMA**(k-1) / (GAMMA + 1)``, within ``ALPHA`` of
every time it holds, relatively: so a percentile read from the counts is within ``ALPHA`` (1%) of the exact
nearest-rank percentile of the same requests, whatever their distribution, and ``0`` when that percentile is 0.

Merging sketches is adding their counts bucket by bucket, which SQL does with ``UNNEST ... WITH ORDINALITY``
and ``GROUP BY`` (``sql/rollup/latency_by_route.sql``), so percentiles over any window and any grouping of
the rollup are one query, on Athena and DuckDB alike. Buckets are stored sparse, as two arrays of the same
length (``latency_buckets``, ascending, and ``latency_counts``): a rollup row holds few requests.

Percentiles are nearest-rank: the p-th is the smallest value with at least ``p`` of the requests at or
below it. In SQL the test ``1000 * cumulative >= permille * total`` keeps it in exact integer arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
X_MIN = 1e-6  # seconds
_LOG_GAMMA = math.log(GAMMA)


def bucket_index(seconds: float) -> int:
    """The bucket of one time (>= 0)."""
    if seconds <= 0:
        return 0
    return max(1, math.ceil(math.log(seconds / X_MIN) / _LOG_GAMMA) + 1)


def bucket_indexes(seconds: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The bucket of every time; NULL where the time is NULL or negative (ALB's -1: no response)."""
    values = pc.fill_null(seconds, -1.0).to_numpy(zero_copy_only=False).astype(np.float64)
    valid = values >= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.ceil(np.log(np.where(values > 0, values, X_MIN) / X_MIN) / _LOG_GAMMA) + 1
    buckets = np.where(values > 0, np.maximum(raw, 1), 0).astype(np.int32)
    return pa.array(buckets, pa.int32(), mask=~valid)


def bucket_value(bucket: int) -> float:
    """The value a bucket stands for."""
    return 0.0 if bucket == 0 else 2 * X_MIN * GAMMA ** (bucket - 1) / (GAMMA + 1)


def quantile(buckets: Sequence[int], counts: Sequence[int], permille: int) -> float | None:
    """The nearest-rank percentile (``permille``: 500 for p50, 950 for p95, 990 for p99) of a sketch given as
    ascending buckets and their counts; None for an empty sketch."""
    total = sum(counts)
    if total == 0:
        return None
    cumulative = 0
    for bucket, count in zip(buckets, counts, strict=True):
        cumulative += count
        if 1000 * cumulative >= permille * total:
            return bucket_value(bucket)
    raise AssertionError("unreachable: the cumulative count reaches the total")


def merge(sketches: Iterable[tuple[Sequence[int], Sequence[int]]]) -> tuple[list[int], list[int]]:
    """Several sketches as one (counts added bucket by bucket)."""
    merged: dict[int, int] = {}
    for buckets, counts in sketches:
        for bucket, count in zip(buckets, counts, strict=True):
            merged[bucket] = merged.get(bucket, 0) + count
    ordered = sorted(merged)
    return ordered, [merged[b] for b in ordered]


def exact_quantile(values: Sequence[float], permille: int) -> float | None:
    """The exact nearest-rank percentile of the values (what a sketch percentile approximates)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-permille * len(ordered) // 1000))  # ceil(permille * n / 1000), at least 1
    return ordered[rank - 1]


# -------------------------------------------------------------------------------------------------- SQL

GAMMA_SQL = f"{GAMMA!r}E0" if "e" not in repr(GAMMA).lower() else repr(GAMMA)
X_MIN_SQL = "1E-6"


def bucket_value_sql(bucket: str) -> str:
    """SQL: the value of a bucket expression (double), as :func:`bucket_value`."""
    value = f"2 * {X_MIN_SQL} * power({GAMMA_SQL}, {bucket} - 1) / ({GAMMA_SQL} + 1)"
    return f"CASE WHEN {bucket} = 0 THEN 0E0 ELSE {value} END"


def bucket_index_sql(seconds: str) -> str:
    """SQL: the bucket of a time expression in seconds (NULL when negative), as :func:`bucket_indexes` up to
    floating-point ties at bucket edges."""
    raw = f"CAST(ceil(ln({seconds} / {X_MIN_SQL}) / ln({GAMMA_SQL})) AS INTEGER) + 1"
    return (
        f"CASE WHEN {seconds} < 0 THEN NULL WHEN {seconds} = 0 THEN 0 "
        f"WHEN {seconds} <= {X_MIN_SQL} THEN 1 ELSE {raw} END"
    )
