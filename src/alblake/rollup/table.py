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

- routes: per load balancer, the ``ROUTE_CAP`` most requested route templates of the file keep their name and
  the others become ``(other)`` (ties broken by the template's text). The choice depends only on the file's
  rows, so re-deriving a file gives the same rows. Across files it can differ: a route kept in one file can be
  folded in another (and a compacted hour decides again for the whole hour), so a route's sum over files is a
  lower bound and ``(other)`` holds the rest. Every request is in exactly one row either way: sums by
  minute, load balancer, target, verb and status code are exact;
- verbs: the nine methods of RFC 9110 and RFC 5789 (PATCH) keep their name, others (scanners send anything)
  become ``(other)``.
"""

from __future__ import annotations

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

_SUMMED = ("requests", "received_bytes", "sent_bytes", "errors_4xx", "errors_5xx", "unanswered",
           "with_error_reason", "desync_ambiguous", "desync_severe", "latency_requests")


def _flag(condition: pa.Array | pa.ChunkedArray) -> pa.Array:
    return pc.cast(pc.fill_null(condition, False), pa.int64())


def capped_routes(elb: pa.ChunkedArray | pa.Array, routes: pa.Array, cap: int = ROUTE_CAP) -> pa.Array:
    """``routes`` with every route beyond the ``cap`` most requested of its load balancer as ``(other)``."""
    table = pa.table({"elb": elb, "route": routes})
    counts = table.group_by(["elb", "route"], use_threads=False).aggregate([([], "count_all")])
    counts = counts.filter(pc.is_valid(counts["route"]))
    if counts.num_rows == 0:
        return routes
    counts = counts.sort_by([("elb", "ascending"), ("count_all", "descending"), ("route", "ascending")])
    elbs = counts["elb"].to_pylist()
    kept_elb: list[str | None] = []
    kept_route: list[str] = []
    seen: dict[str | None, int] = {}
    for lb, route in zip(elbs, counts["route"].to_pylist(), strict=True):
        if seen.get(lb, 0) < cap:
            seen[lb] = seen.get(lb, 0) + 1
            kept_elb.append(lb)
            kept_route.append(route)
    if len(kept_route) == counts.num_rows:
        return routes
    keys = pc.binary_join_element_wise(pc.fill_null(table["elb"], ""), table["route"], "\x00")
    kept = pa.array([f"{lb or ''}\x00{route}" for lb, route in zip(kept_elb, kept_route, strict=True)])
    is_kept = pc.is_in(keys, value_set=kept)
    return pc.if_else(pc.or_kleene(is_kept, pc.is_null(table["route"])), table["route"], OTHER_ROUTE)


def _status_class(codes: pa.ChunkedArray) -> pa.Array:
    hundreds = pc.cast(pc.floor(pc.divide(pc.cast(codes, pa.float64()), 100.0)), pa.int64())
    return pc.binary_join_element_wise(pc.cast(hundreds, pa.string()), pa.scalar("xx"), "")


def _drop_null_buckets(
    buckets: pa.ChunkedArray | pa.ListArray, counts: pa.ChunkedArray | pa.ListArray
) -> tuple[pa.Array, pa.Array]:
    """The sketch lists without the NULL bucket (the requests without a time)."""
    if isinstance(buckets, pa.ChunkedArray):
        buckets = buckets.combine_chunks()
    if isinstance(counts, pa.ChunkedArray):
        counts = counts.combine_chunks()
    valid = pc.is_valid(pc.list_flatten(buckets))
    parents = pc.list_parent_indices(buckets)
    kept_parents = parents.filter(valid).to_numpy()
    offsets = np.concatenate([[0], np.cumsum(np.bincount(kept_parents, minlength=len(buckets)))])
    offsets_array = pa.array(offsets, pa.int32())
    return (
        pa.ListArray.from_arrays(offsets_array, pc.list_flatten(buckets).filter(valid).cast(pa.int32())),
        pa.ListArray.from_arrays(offsets_array, pc.list_flatten(counts).filter(valid).cast(pa.int64())),
    )


def derive(rows: pa.Table, *, route_cap: int = ROUTE_CAP) -> pa.Table:
    """The rollup rows of one data file's rows (``ARROW_SCHEMA`` columns; others are ignored). Pure: the same
    rows give the same table, rows sorted by the dimensions."""
    if rows.num_rows == 0:
        return SCHEMA.empty_table()
    missing = [c for c in ARROW_SCHEMA.names if c not in rows.column_names]
    for name in missing:  # older files lack later columns: NULL, as readers see them
        rows = rows.append_column(name, pa.nulls(rows.num_rows, ARROW_SCHEMA.field(name).type))
    status = rows["elb_status_code"]
    target_time = rows["target_processing_time"]
    verb = rows["request_verb"]
    classification = rows["classification"]
    base = pa.table(
        {
            "minute": pc.floor_temporal(rows["time"], unit="minute"),
            "elb": rows["elb"],
            "target_group_arn": rows["target_group_arn"],
            "target_ip": rows["target_ip"],
            "target_port": rows["target_port"],
            "route": capped_routes(rows["elb"], route_templates(rows["request_url"]), route_cap),
            "request_verb": pc.if_else(pc.or_kleene(pc.is_in(verb, pa.array(sorted(VERBS))), pc.is_null(verb)),
                                       verb, OTHER_VERB),
            "elb_status_code": status,
            "target_status_class": _status_class(rows["target_status_code"]),
            "bucket": bucket_indexes(target_time),
            "requests": pa.array([1] * rows.num_rows, pa.int64()),
            "received_bytes": pc.fill_null(rows["received_bytes"], 0),
            "sent_bytes": pc.fill_null(rows["sent_bytes"], 0),
            "errors_4xx": _flag(pc.and_(pc.greater_equal(status, 400), pc.less_equal(status, 499))),
            "errors_5xx": _flag(pc.and_(pc.greater_equal(status, 500), pc.less_equal(status, 599))),
            "unanswered": _flag(pc.equal(target_time, -1.0)),
            "with_error_reason": _flag(pc.is_valid(rows["lambda_error_reason"])),
            "desync_ambiguous": _flag(pc.equal(classification, DESYNC_CLASSES[0])),
            "desync_severe": _flag(pc.equal(classification, DESYNC_CLASSES[1])),
            "latency_requests": _flag(pc.greater_equal(target_time, 0.0)),
            "latency": pc.if_else(pc.greater_equal(target_time, 0.0), target_time, None),
        }
    )
    keys = [*DIMENSION_NAMES, "bucket"]
    per_bucket = base.group_by(keys, use_threads=False).aggregate(
        [*((c, "sum") for c in _SUMMED), ("latency", "sum"), ("latency", "max")]
    )
    per_bucket = per_bucket.sort_by([(k, "ascending") for k in keys])
    grouped = per_bucket.group_by(list(DIMENSION_NAMES), use_threads=False).aggregate(
        [
            *((f"{c}_sum", "sum") for c in _SUMMED),
            ("latency_sum", "sum"),
            ("latency_max", "max"),
            ("bucket", "list"),
            ("latency_requests_sum", "list"),
        ]
    )
    buckets, counts = _drop_null_buckets(grouped["bucket_list"], grouped["latency_requests_sum_list"])
    columns = {name: grouped[name] for name in DIMENSION_NAMES}
    columns.update({c: grouped[f"{c}_sum_sum"] for c in _SUMMED})
    columns["latency_sum"] = grouped["latency_sum_sum"]
    columns["latency_max"] = grouped["latency_max_max"]
    columns["latency_buckets"] = buckets
    columns["latency_counts"] = counts
    table = pa.table(columns).cast(SCHEMA)
    return table.sort_by([(name, "ascending") for name in DIMENSION_NAMES])


class RollupTable:
    """The rollup as a derived table of the lake (``alblake.ports.DerivedTable``): its Glue name, key prefix,
    schema and :func:`derive`."""

    name = NAME
    prefix = PREFIX
    schema = SCHEMA

    def derive(self, rows: pa.Table) -> pa.Table:
        return derive(rows)


ROLLUP = RollupTable()
