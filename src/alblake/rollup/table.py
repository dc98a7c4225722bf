"""The rollup table ``alb_rollup_1m``: per minute, the requests of the curated table summed by a few dimensions.

One row per minute x load balancer (``elb``) x target group x target (``target_ip``, ``target_port``) x route
template x verb x ELB status code x target status class, holding requests, bytes in and out, error counts and
a latency sketch (``alblake.rollup.sketch``). :func:`derive` computes it from the rows of one data file of the
lake, and nothing else: the lake writes the result next to each data file (per object, batch or compacted,
the same function), so the rollup is committed, compacted and deleted with the rows it sums, exactly once.
Sums over any set of files are then plain SQL sums (``GROUP BY`` minute and dimensions).

Why these dimensions: each answers a question of an incident (which target, which route, which verb, which
status), and together they stay small. The target group and the target status class add almost no rows: a
target belongs to one or two target groups, and the target's status class follows the ELB status code except
when the load balancer answers for the target (502, 503, 504 without a target status). High-cardinality
dimensions (client address, user agent, TLS protocol, domain, error reason) stay in the curated table, where
``alblake triage`` reads them.

Caps that keep a file's rollup small whatever the traffic:

- routes: per load balancer, the ``ROUTE_CAP`` most requested route templates of the rows given (the lake
  derives a file 128K rows at a time) keep their name and the others become ``(other)`` (ties broken by the
  template's text). The choice depends only on those rows, so re-deriving a file gives the same rows. Across
  files it can differ: a route kept in one file can be folded in another (and a compacted hour decides again
  for the whole hour), so a route's sum over files is a lower bound and ``(other)`` holds the rest. Every
  request is in exactly one row either way: sums by minute, load balancer, target, verb and status are exact;
- verbs: the nine methods of RFC 9110 and RFC 5789 (PATCH) keep their name, others (scanners send anything)
  become ``(other)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from alblake.rollup.routes import OTHER_ROUTE, route_templates
from alblake.rollup.sketch import bucket_indexes
from alblake.schema import ARROW_SCHEMA, ROLLUP_ARROW_SCHEMA, ROLLUP_DIMENSIONS, ROLLUP_TABLE_NAME

NAME = ROLLUP_TABLE_NAME
PREFIX = f"{NAME}/"
ROUTE_CAP = 200
VERBS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
OTHER_VERB = "(other)"
DESYNC_CLASSES = ("Ambiguous", "Severe")

DIMENSION_NAMES = tuple(c.name for c in ROLLUP_DIMENSIONS)
SCHEMA = ROLLUP_ARROW_SCHEMA

def _numpy(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(array.to_numpy(zero_copy_only=False))


def _encoded(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """The column hashed: its distinct values (in the order met) and an index into them per row, NULL as the
    index one past the last. A chunked column is hashed chunk by chunk, never copied into one array: its chunks
    share one dictionary."""
    if not isinstance(column, pa.ChunkedArray):
        column = pa.chunked_array([column])
    encoded = pc.dictionary_encode(column)
    if encoded.num_chunks == 0:
        return np.zeros(0, dtype=np.int64), pa.array([], column.type)
    dictionary = encoded.chunk(0).dictionary
    indices = pa.chunked_array([chunk.indices for chunk in encoded.chunks])
    return _numpy(pc.fill_null(indices, len(dictionary))).astype(np.int64, copy=False), dictionary


def _codes(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """An integer code per row and the distinct values, in their sort order: codes compare as the values do
    (NULL is the last code, as NULLs sort last). Hashing finds the distinct values; only they are sorted."""
    indices, dictionary = _encoded(column)
    order = _numpy(pc.array_sort_indices(dictionary))
    rank = np.empty(len(order) + 1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    rank[len(order)] = len(order)
    return rank[indices], dictionary.take(pa.array(order, pa.int64()))


@dataclass(frozen=True)
class _Dimension:
    """A dimension of the rows: a code per row (``_codes``: in the values' sort order, NULL last) and its values."""

    codes: np.ndarray
    values: pa.Array

    @classmethod
    def of(cls, column: pa.Array | pa.ChunkedArray) -> _Dimension:
        if len(column) and column.null_count == 0 and pc.all(pc.equal(column, column[0])).as_py():
            # one value (a data file's load balancer): a comparison is cheaper than hashing
            return cls(np.zeros(len(column), dtype=np.int64), pa.array([column[0].as_py()], column.type))
        return cls(*_codes(column))

    @classmethod
    def image(cls, column: pa.Array | pa.ChunkedArray, image: Callable[[pa.Array], pa.Array]) -> _Dimension:
        """The dimension whose value is ``image`` of the column's (NULL stays NULL), computed once per distinct
        value: ``image`` gets the distinct values and returns one value for each (NULL and repeats allowed). The
        column's own values are never sorted nor copied (1.5 KB URLs: only their templates are)."""
        indices, dictionary = _encoded(column)
        codes, values = _codes(image(dictionary))
        lookup = np.append(codes, len(values))  # a NULL of the column maps to NULL
        return cls(lookup[indices], values)

    def at(self, rows: np.ndarray) -> pa.Array:
        """The values of some rows (by position)."""
        picked = self.codes[rows]
        return self.values.take(pa.array(picked, mask=picked == len(self.values)))


def _group(dimensions: Sequence[_Dimension]) -> np.ndarray:
    """A group number per row, from the rows' codes in several dimensions: groups are numbered in the order of
    the codes, dimension by dimension."""
    key = np.zeros(len(dimensions[0].codes), dtype=np.int64)
    span = 1
    for dimension in dimensions:
        size = len(dimension.values)
        if span * (size + 1) >= 1 << 62:  # renumber densely before the key could overflow
            key, _ = _dense(key)
            span = int(key.max()) + 1
        key = key * (size + 1) + dimension.codes
        span *= size + 1
    return _dense(key)[0]


def _dense(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A number per row, 0 to n-1 in the order of the distinct keys, and the distinct keys (sorted). Hashing finds
    the distinct keys (cheaper than sorting every row); only they are sorted."""
    encoded = pc.dictionary_encode(pa.array(key, pa.int64()))
    distinct = _numpy(encoded.dictionary)
    order = np.argsort(distinct)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[_numpy(encoded.indices).astype(np.int64)], distinct[order]


def capped_routes(elb: pa.ChunkedArray | pa.Array, routes: pa.Array, cap: int = ROUTE_CAP) -> pa.Array:
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


def _route_dimension(elb: _Dimension, urls: pa.ChunkedArray, cap: int, parts: _Dimension) -> _Dimension:
    """The route template of every row (computed once per distinct URL), capped per load balancer of each part."""
    routes = _Dimension.image(urls, route_templates)
    if len(routes.values) <= cap:  # the common case: no load balancer can have more routes than the cap
        return routes
    owner = pa.array(parts.codes * (len(elb.values) + 1) + elb.codes)  # (part, load balancer): the cap's unit
    return _Dimension.of(capped_routes(owner, routes.at(np.arange(len(routes.codes))), cap))


def _status_classes(statuses: pa.Array) -> pa.Array:
    """``2xx`` for 200-299 and so on."""
    return pa.array([None if v is None else f"{v // 100}xx" for v in statuses.to_pylist()], pa.string())


def _verb_names(verbs: pa.Array) -> pa.Array:
    return pc.if_else(pc.is_in(verbs, pa.array(sorted(VERBS))), verbs, OTHER_VERB)


def _minutes(times: pa.ChunkedArray) -> pa.Array:
    """The start of each time's minute (UTC), in integer arithmetic (faster than a time-zone aware floor)."""
    micros = _numpy(pc.cast(times, pa.int64()).fill_null(0))
    valid = _numpy(pc.is_valid(times))
    return pa.array(micros - micros % 60_000_000, pa.int64(), mask=~valid).cast(times.type)


def _sums(group: np.ndarray, size: int, values: np.ndarray) -> np.ndarray:
    return np.rint(np.bincount(group, weights=values, minlength=size)).astype(np.int64)


def _sketches(group: np.ndarray, size: int, buckets: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Each group's sketch: its rows' buckets (ascending) and how many rows each holds."""
    valid = _numpy(pc.is_valid(buckets))
    bucket = _numpy(pc.fill_null(buckets, 0)).astype(np.int64)[valid]
    width = int(bucket.max()) + 1 if len(bucket) else 1
    # (group, bucket) pairs are nearly as many as the rows: sorting them all beats hashing them (_dense), and
    # sorting 32-bit keys beats 64-bit ones where they fit
    keys = group[valid] * width + bucket
    if size * width < 1 << 31:
        keys = keys.astype(np.int32)
    pairs, counts = np.unique(keys, return_counts=True)
    pairs = pairs.astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(pairs // width, minlength=size))]).astype(np.int32)
    return (
        pa.ListArray.from_arrays(pa.array(offsets), pa.array(pairs % width, pa.int32())),
        pa.ListArray.from_arrays(pa.array(offsets), pa.array(counts, pa.int64())),
    )


def _dimensions(rows: pa.Table, route_cap: int, parts: _Dimension) -> dict[str, _Dimension]:
    elb = _Dimension.of(rows["elb"])
    return {
        "part": parts,
        "minute": _Dimension.of(_minutes(rows["time"])),
        "elb": elb,
        "target_group_arn": _Dimension.of(rows["target_group_arn"]),
        "target_ip": _Dimension.of(rows["target_ip"]),
        "target_port": _Dimension.of(rows["target_port"]),
        "route": _route_dimension(elb, rows["request_url"], route_cap, parts),
        "request_verb": _Dimension.image(rows["request_verb"], _verb_names),
        "elb_status_code": _Dimension.of(rows["elb_status_code"]),
        "target_status_class": _Dimension.image(rows["target_status_code"], _status_classes),
    }


def derive(rows: pa.Table, *, route_cap: int = ROUTE_CAP) -> pa.Table:
    """The rollup rows of some rows of one data file (``ARROW_SCHEMA`` columns; others are ignored). Pure: the same
    rows give the same table, rows sorted by the dimensions."""
    return derive_parts(rows, np.zeros(rows.num_rows, dtype=np.int64), 1, route_cap=route_cap)[0]


def derive_parts(rows: pa.Table, parts: np.ndarray, count: int, *, route_cap: int = ROUTE_CAP) -> list[pa.Table]:
    """``derive`` of the rows of each part, in one pass (``parts``: the part of every row, 0 to ``count - 1``): the
    same tables as deriving each part's rows alone (the route cap applies per part too), at the fixed cost of one
    derivation. The conversion derives the rows of many small partition-hours at once this way."""
    if rows.num_rows == 0:
        return [SCHEMA.empty_table() for _ in range(count)]
    missing = [c for c in ARROW_SCHEMA.names if c not in rows.column_names]
    for name in missing:  # older files lack later columns: NULL, as readers see them
        rows = rows.append_column(name, pa.nulls(rows.num_rows, ARROW_SCHEMA.field(name).type))
    part_dimension = _Dimension(np.asarray(parts, dtype=np.int64), pa.array(np.arange(count), pa.int64()))
    dimensions = _dimensions(rows, route_cap, part_dimension)
    group = _group([dimensions[name] for name in ("part", *DIMENSION_NAMES)])  # the part first: parts in order
    size = int(group.max()) + 1
    representative = np.empty(size, dtype=np.int64)  # a row of each group (any: they share every dimension)
    representative[group] = np.arange(len(group))
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        name: dimensions[name].at(representative) for name in DIMENSION_NAMES
    }
    status = _numpy(pc.fill_null(rows["elb_status_code"], 0))
    times = _numpy(pc.fill_null(rows["target_processing_time"], -2.0)).astype(np.float64)
    classification = rows["classification"]
    timed = times >= 0
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
    table = pa.table(columns).cast(SCHEMA)  # groups are numbered in the part's, then the dimensions' sort order
    ends = np.cumsum(np.bincount(part_dimension.codes[representative], minlength=count))
    return [table.slice(int(end - rows), int(rows)) for end, rows in zip(ends, np.diff(ends, prepend=0), strict=True)]


class RollupTable:
    """The rollup as a derived table of the lake (``alblake.ports.DerivedTable``): its Glue name, key prefix,
    schema and :func:`derive`."""

    name = NAME
    prefix = PREFIX
    schema = SCHEMA
    # the curated columns derive() reads (the others may be left out: it fills what is missing with NULL)
    columns = ("time", "elb", "target_group_arn", "target_ip", "target_port", "request_url", "request_verb",
               "elb_status_code", "target_status_code", "received_bytes", "sent_bytes", "target_processing_time",
               "lambda_error_reason", "classification")

    def derive(self, rows: pa.Table) -> pa.Table:
        return derive(rows)

    def derive_parts(self, rows: pa.Table, parts: np.ndarray, count: int) -> list[pa.Table]:
        return derive_parts(rows, parts, count)


ROLLUP = RollupTable()
