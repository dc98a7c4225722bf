"""The rollup's ``derive`` as it was before it was restructured for speed (a sort of every row per dimension and
per group, where the current one hashes and sorts only the distinct values), kept as the reference the current one
must agree with, value for value (tests/test_rollup_table.py). Test code only."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from alblake.rollup.routes import OTHER_ROUTE, route_templates
from alblake.rollup.sketch import bucket_indexes
from alblake.rollup.table import DESYNC_CLASSES, DIMENSION_NAMES, OTHER_VERB, ROUTE_CAP, SCHEMA, VERBS
from alblake.schema import ARROW_SCHEMA

__all__ = ["derive"]


def _numpy(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(array.to_numpy(zero_copy_only=False))


def _codes(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """An integer code per row and the distinct values, in their sort order: codes compare as the values do
    (NULL is the last code, as NULLs sort last)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    encoded = pc.dictionary_encode(column)
    order = _numpy(pc.array_sort_indices(encoded.dictionary))
    rank = np.empty(len(order) + 1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    rank[len(order)] = len(order)
    codes = rank[_numpy(pc.fill_null(encoded.indices, len(order))).astype(np.int64)]
    return codes, encoded.dictionary.take(pa.array(order, pa.int64()))


def _group(codes: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
    """A group number per row, from the rows' codes in several columns (each with its number of codes), and the
    first row of each group: groups are numbered in the order of the codes, column by column."""
    key = np.zeros(len(codes[0][0]), dtype=np.int64)
    span = 1
    for column, size in codes:
        if span * (size + 1) >= 1 << 62:  # renumber densely before the key could overflow
            _, key = np.unique(key, return_inverse=True)
            key = np.asarray(key, dtype=np.int64).reshape(-1)
            span = int(key.max()) + 1
        key = key * (size + 1) + column
        span *= size + 1
    _, first, dense = np.unique(key, return_index=True, return_inverse=True)
    return np.asarray(dense, dtype=np.int64).reshape(-1), first


def _capped_routes(elb: pa.ChunkedArray | pa.Array, routes: pa.Array, cap: int = ROUTE_CAP) -> pa.Array:
    """``routes`` with every route beyond the ``cap`` most requested of its load balancer as ``(other)`` (ties: the
    smaller template first, so the choice depends only on the rows)."""
    route_codes, route_values = _codes(routes)
    if len(route_values) <= cap:  # the common case: no load balancer can have more routes than the cap
        return routes
    elb_codes, elb_values = _codes(elb)
    width = len(route_values) + 1
    counts = np.bincount(elb_codes * width + route_codes, minlength=(len(elb_values) + 1) * width)
    names = route_values.to_pylist()
    kept = np.ones(len(counts), dtype=bool)
    for lb in range(len(elb_values) + 1):
        present = [r for r in np.flatnonzero(counts[lb * width:(lb + 1) * width]) if r != len(route_values)]
        if len(present) > cap:
            ordered = sorted(present, key=lambda r: (-counts[lb * width + r], names[r]))
            kept[[lb * width + r for r in ordered[cap:]]] = False
    if kept.all():
        return routes
    return pc.if_else(pa.array(kept[elb_codes * width + route_codes]), routes, OTHER_ROUTE)


def _status_class(statuses: pa.ChunkedArray) -> pa.Array:
    """``2xx`` for 200-299 and so on (NULL stays NULL), computed once per distinct code."""
    codes, values = _codes(statuses)
    classes = [None if v is None else f"{v // 100}xx" for v in values.to_pylist()]
    return pa.array([*classes, None], pa.string()).take(pa.array(codes))


def _minutes(times: pa.ChunkedArray) -> pa.Array:
    """The start of each time's minute (UTC), in integer arithmetic (faster than a time-zone aware floor)."""
    micros = _numpy(pc.cast(times, pa.int64()).fill_null(0))
    valid = _numpy(pc.is_valid(times))
    return pa.array(micros - micros % 60_000_000, pa.int64(), mask=~valid).cast(times.type)


def _verbs(verb: pa.ChunkedArray) -> pa.Array:
    standard = pc.or_kleene(pc.is_in(verb, pa.array(sorted(VERBS))), pc.is_null(verb))
    return pc.if_else(standard, verb, OTHER_VERB)


def _row_routes(urls: pa.ChunkedArray) -> pa.Array:
    """The route template of every row, computed once per distinct URL."""
    codes, values = _codes(urls)
    templates = pa.concat_arrays([route_templates(values), pa.array([None], pa.string())])
    return templates.take(pa.array(codes))


def _sums(group: np.ndarray, size: int, values: np.ndarray) -> np.ndarray:
    return np.rint(np.bincount(group, weights=values, minlength=size)).astype(np.int64)


def _sketches(group: np.ndarray, size: int, buckets: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Each group's sketch: its rows' buckets (ascending) and how many rows each holds."""
    valid = _numpy(pc.is_valid(buckets))
    bucket = _numpy(pc.fill_null(buckets, 0)).astype(np.int64)[valid]
    width = int(bucket.max()) + 1 if len(bucket) else 1
    pairs, counts = np.unique(group[valid] * width + bucket, return_counts=True)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(pairs // width, minlength=size))]).astype(np.int32)
    return (
        pa.ListArray.from_arrays(pa.array(offsets), pa.array(pairs % width, pa.int32())),
        pa.ListArray.from_arrays(pa.array(offsets), pa.array(counts, pa.int64())),
    )


def derive(rows: pa.Table, *, route_cap: int = ROUTE_CAP) -> pa.Table:
    """The rollup rows of some rows of one data file (``ARROW_SCHEMA`` columns; others are ignored). Pure: the same
    rows give the same table, rows sorted by the dimensions."""
    if rows.num_rows == 0:
        return SCHEMA.empty_table()
    missing = [c for c in ARROW_SCHEMA.names if c not in rows.column_names]
    for name in missing:  # older files lack later columns: NULL, as readers see them
        rows = rows.append_column(name, pa.nulls(rows.num_rows, ARROW_SCHEMA.field(name).type))
    dimensions = pa.table(
        {
            "minute": _minutes(rows["time"]),
            "elb": rows["elb"],
            "target_group_arn": rows["target_group_arn"],
            "target_ip": rows["target_ip"],
            "target_port": rows["target_port"],
            "route": _capped_routes(rows["elb"], _row_routes(rows["request_url"]), route_cap),
            "request_verb": _verbs(rows["request_verb"]),
            "elb_status_code": rows["elb_status_code"],
            "target_status_class": _status_class(rows["target_status_code"]),
        }
    )
    codes = [_codes(dimensions[name]) for name in DIMENSION_NAMES]
    group, first = _group([(c, len(v)) for c, v in codes])
    size = len(first)
    status = _numpy(pc.fill_null(rows["elb_status_code"], 0))
    times = _numpy(pc.fill_null(rows["target_processing_time"], -2.0)).astype(np.float64)
    classification = rows["classification"]
    timed = times >= 0
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    for name, (column_codes, values) in zip(DIMENSION_NAMES, codes, strict=True):
        picked = column_codes[first]
        columns[name] = values.take(pa.array(picked, mask=picked == len(values)))
    flags = {
        "requests": np.ones(rows.num_rows),
        "received_bytes": _numpy(pc.fill_null(rows["received_bytes"], 0)).astype(np.float64),
        "sent_bytes": _numpy(pc.fill_null(rows["sent_bytes"], 0)).astype(np.float64),
        "errors_4xx": (status >= 400) & (status <= 499),
        "errors_5xx": (status >= 500) & (status <= 599),
        "unanswered": times == -1.0,
        "with_error_reason": _numpy(pc.is_valid(rows["lambda_error_reason"])),
        "desync_ambiguous": _numpy(pc.fill_null(pc.equal(classification, DESYNC_CLASSES[0]), False)),
        "desync_severe": _numpy(pc.fill_null(pc.equal(classification, DESYNC_CLASSES[1]), False)),
        "latency_requests": timed,
    }
    for name, values in flags.items():
        columns[name] = pa.array(_sums(group, size, np.asarray(values, dtype=np.float64)), pa.int64())
    with_latency = np.bincount(group, weights=timed, minlength=size) > 0
    latency_sum = np.bincount(group, weights=np.where(timed, times, 0.0), minlength=size)
    latency_max = np.full(size, -np.inf)
    np.maximum.at(latency_max, group, np.where(timed, times, -np.inf))
    columns["latency_sum"] = pa.array(latency_sum, pa.float64(), mask=~with_latency)
    columns["latency_max"] = pa.array(latency_max, pa.float64(), mask=~with_latency)
    columns["latency_buckets"], columns["latency_counts"] = _sketches(group, size, bucket_indexes(
        rows["target_processing_time"]))
    return pa.table(columns).cast(SCHEMA)  # groups are numbered in the dimensions' sort order
