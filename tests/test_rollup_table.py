"""The rollup of a data file: exact sums by minute, load balancer and status, the caps, determinism, and the check
that compares it with the curated table per partition-hour."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alblake.ingest.runner import ingest_paths
from alblake.lake.compaction import CompactionOptions, compact
from alblake.lake.generational import open_local_lake
from alblake.parse import parse_block
from alblake.rollup.check import rollup_check
from alblake.rollup.files import rollup_url
from alblake.rollup.routes import OTHER_ROUTE, route_template
from alblake.rollup.sketch import bucket_index, exact_quantile, quantile
from alblake.rollup.table import OTHER_VERB, ROLLUP, ROUTE_CAP, SCHEMA, capped_routes, derive, derive_parts
from alblake.sample import write_sample_logs
from alblake.schema import ARROW_SCHEMA, ROLLUP_TABLE_NAME
from tests.analysis_fixtures import make_rows
from tests.rollup_reference import derive as reference_derive

DATA = Path(__file__).parent / "data"


def rows_table(rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=ARROW_SCHEMA)


def _sums(table: pa.Table, keys: tuple[str, ...], measure: str | None) -> dict[tuple[object, ...], int]:
    sums: dict[tuple[object, ...], int] = defaultdict(int)
    for row in table.to_pylist():
        key = tuple(row[k] for k in keys)
        sums[key] += 1 if measure is None else (row[measure] or 0)
    return dict(sums)


def _curated_sums(rows: pa.Table) -> dict[str, dict[tuple[object, ...], int]]:
    with_minute = rows.append_column(
        "minute", pa.array([t.replace(second=0, microsecond=0) for t in rows["time"].to_pylist()])
    )
    keys = ("minute", "elb", "elb_status_code", "target_ip")
    return {
        "requests": _sums(with_minute, keys, None),
        "received_bytes": _sums(with_minute, keys, "received_bytes"),
        "sent_bytes": _sums(with_minute, keys, "sent_bytes"),
    }


def _rollup_sums(rollup: pa.Table) -> dict[str, dict[tuple[object, ...], int]]:
    keys = ("minute", "elb", "elb_status_code", "target_ip")
    return {m: _sums(rollup, keys, m) for m in ("requests", "received_bytes", "sent_bytes")}


# ---------------------------------------------------------------------------------------------- derive


def test_sums_by_minute_lb_status_and_target_are_exact() -> None:
    rows = rows_table(make_rows(2000, seed=5))
    rollup = derive(rows)
    assert rollup.schema == SCHEMA
    assert _rollup_sums(rollup) == _curated_sums(rows)
    assert sum(rollup["errors_5xx"].to_pylist()) == sum(500 <= s <= 599 for s in rows["elb_status_code"].to_pylist())
    times = rows["target_processing_time"].to_pylist()
    assert sum(rollup["unanswered"].to_pylist()) == sum(t == -1 for t in times)
    assert sum(rollup["latency_requests"].to_pylist()) == sum(t >= 0 for t in times)
    assert sum(rollup["desync_severe"].to_pylist()) == rows["classification"].to_pylist().count("Severe")
    reasons = rows["lambda_error_reason"].to_pylist()
    assert sum(rollup["with_error_reason"].to_pylist()) == sum(r is not None for r in reasons)


def test_every_row_is_one_combination_of_the_dimensions() -> None:
    rows = rows_table(make_rows(2000, seed=6))
    rollup = derive(rows)
    keys = [tuple(r[k] for k in ("minute", "elb", "target_group_arn", "target_ip", "target_port", "route",
                                 "request_verb", "elb_status_code", "target_status_class"))
            for r in rollup.to_pylist()]
    assert len(keys) == len(set(keys))
    for row in rollup.to_pylist():
        assert row["requests"] >= 1
        assert sum(row["latency_counts"]) == row["latency_requests"]
        assert row["latency_buckets"] == sorted(row["latency_buckets"])
        assert len(set(row["latency_buckets"])) == len(row["latency_buckets"])


def test_routes_and_sketch_of_one_combination() -> None:
    base = make_rows(1, seed=1)[0]
    times = [0.0, 0.001, 0.012, 0.25, 3.5, -1.0]
    rows = [dict(base, request_url=f"https://example.com:443/users/{i}/cart?x={i}", request_verb="GET",
                 target_processing_time=t, elb_status_code=200, target_status_code=200) for i, t in enumerate(times)]
    rollup = derive(rows_table(rows)).to_pylist()
    assert len(rollup) == 1
    row = rollup[0]
    assert row["route"] == "/users/{id}/cart" and row["target_status_class"] == "2xx"
    assert row["requests"] == 6 and row["unanswered"] == 1 and row["latency_requests"] == 5
    assert row["latency_buckets"] == sorted({bucket_index(t) for t in times if t >= 0})
    assert row["latency_max"] == 3.5 and row["latency_sum"] == pytest.approx(sum(t for t in times if t >= 0))
    valid = [t for t in times if t >= 0]
    for permille in (500, 950, 990):
        estimate = quantile(row["latency_buckets"], row["latency_counts"], permille)
        exact = exact_quantile(valid, permille)
        assert estimate is not None and exact is not None and abs(estimate - exact) <= 0.01 * exact


def test_route_cap_folds_the_rarest_routes_per_load_balancer() -> None:
    elb = pa.array(["a"] * 6 + ["b"] * 2)
    routes = pa.array(["/x", "/x", "/x", "/y", "/y", "/z", "/z", None])
    assert capped_routes(elb, routes, cap=2).to_pylist() == ["/x", "/x", "/x", "/y", "/y", OTHER_ROUTE, "/z", None]
    tie = capped_routes(pa.array(["a"] * 3), pa.array(["/b", "/a", "/c"]), cap=2).to_pylist()
    assert tie == ["/b", "/a", OTHER_ROUTE]  # a tie keeps the smaller template: the choice depends on the rows only


def test_cap_keeps_sums_exact_and_non_standard_verbs_fold() -> None:
    base = make_rows(1, seed=2)[0]
    names = [f"{a}{b}" for a in "abcdefghijklmnopqrstuvwxyz" for b in "abcdefghijklmnopqrstuvwxyz"]
    rows = [dict(base, request_url=f"https://e.com:443/page-{name}", request_verb=v)
            for name in names[: ROUTE_CAP + 50] for v in ("GET", "FOOBAR")]
    rollup = derive(rows_table(rows))
    routes = set(rollup["route"].to_pylist())
    assert OTHER_ROUTE in routes and len(routes) == ROUTE_CAP + 1
    assert set(rollup["request_verb"].to_pylist()) == {"GET", OTHER_VERB}
    assert sum(rollup["requests"].to_pylist()) == len(rows)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 400), st.integers(0, 2**32))
def test_derive_is_a_pure_function_of_the_rows(n: int, seed: int) -> None:
    rows = rows_table(make_rows(n, seed=seed))
    first = derive(rows)
    assert first.equals(derive(rows))
    assert _rollup_sums(first) == _curated_sums(rows)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 600), st.integers(0, 2**32), st.sampled_from([ROUTE_CAP, 3, 1]), st.booleans())
def test_derive_agrees_with_the_reference(n: int, seed: int, cap: int, odd: bool) -> None:
    """The current derive (hashing, sorting only distinct values) gives exactly the reference's rows, also with the
    route cap folding routes, NULL dimensions and verbs scanners send."""
    rows = make_rows(n, seed=seed)
    if odd:
        rnd = random.Random(seed)
        for row in rows:
            row["request_verb"] = rnd.choice(["GET", "FOOBAR", None, "PATCH", "get"])
            row["elb"] = rnd.choice([row["elb"], None])
            row["target_status_code"] = rnd.choice([row["target_status_code"], None, 599, 100])
            row["time"] = rnd.choice([row["time"], None])
    table = rows_table(rows)
    assert derive(table, route_cap=cap).equals(reference_derive(table, route_cap=cap))


def test_a_file_of_one_load_balancer_and_target_agrees_with_the_reference() -> None:
    """Columns of one value (a data file's load balancer) take a shortcut: the rows are still the reference's."""
    rows = make_rows(300, seed=4)
    for row in rows:
        row.update(elb=rows[0]["elb"], target_ip="10.0.0.1", target_port=80, request_verb="GET")
    table = rows_table(rows)
    assert derive(table).equals(reference_derive(table))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 500), st.integers(0, 2**32), st.integers(1, 6), st.sampled_from([ROUTE_CAP, 2]))
def test_derive_parts_is_each_part_derived_alone(n: int, seed: int, count: int, cap: int) -> None:
    """The conversion derives many small partition-hours in one pass: each part's table is exactly the reference's
    derive of that part's rows alone (the route cap too), also for a part without rows."""
    table = rows_table(make_rows(n, seed=seed))
    parts = np.random.default_rng(seed).integers(0, count, n)
    together = derive_parts(table, parts, count, route_cap=cap)
    assert len(together) == count
    for part, derived in enumerate(together):
        alone = reference_derive(table.filter(pa.array(parts == part)), route_cap=cap)
        assert derived.equals(alone)


def test_empty_and_old_files() -> None:
    assert derive(ARROW_SCHEMA.empty_table()).equals(SCHEMA.empty_table())
    old = rows_table(make_rows(50, seed=9)).select([f.name for f in ARROW_SCHEMA][:18])  # a 2016 file
    rollup = derive(old)
    assert sum(rollup["requests"].to_pylist()) == 50
    assert ROLLUP.derive(old).equals(rollup) and ROLLUP.name == ROLLUP_TABLE_NAME and ROLLUP.schema == SCHEMA


def test_derive_reads_only_its_columns() -> None:
    rows = rows_table(make_rows(500, seed=12))
    assert derive(rows.select(list(ROLLUP.columns))).equals(derive(rows))


def test_documented_lines() -> None:
    lines = [b for b in (DATA / "aws_documented_examples.log").read_bytes().splitlines() if b.strip()]
    rows = parse_block(b"\n".join(lines) + b"\n").table
    rollup = derive(rows)
    # seven requests in the same minute; the http and https GET / to 10.0.0.1:80 share a row
    assert (rows.num_rows, rollup.num_rows) == (7, 6)
    assert _rollup_sums(rollup) == _curated_sums(rows)
    assert set(rollup["route"].to_pylist()) == {route_template(u) for u in rows["request_url"].to_pylist()}


def test_files_sum_to_the_same_as_their_union() -> None:
    """What exactness across files rests on: the rollup of several files sums to the rollup of their rows."""
    rows = make_rows(3000, seed=11)
    random.Random(1).shuffle(rows)
    parts = [rows_table(rows[i::3]) for i in range(3)]
    pieces = pa.concat_tables([derive(p) for p in parts])
    whole = derive(rows_table(rows))
    assert _rollup_sums(pieces) == _rollup_sums(whole) == _curated_sums(rows_table(rows))
    assert pieces.num_rows >= whole.num_rows


# ----------------------------------------------------------------------------------------------- check


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    logs = write_sample_logs(tmp_path / "logs", files=6, lines_per_file=800, seed=4)
    summary = ingest_paths([str(p) for p in logs], tmp_path / "lake", jobs=1, batch=False)
    assert summary.failures == []  # the lake writes the rollup file of every data file (a derived table)
    return tmp_path / "lake"


def test_check_agrees_on_a_consistent_lake(lake: Path) -> None:
    check = rollup_check(open_local_lake(lake))
    assert check.mismatches == 0 and check.partitions == 3
    curated_rows = sum(pq.read_metadata(f).num_rows for f in open_local_lake(lake).visible_files())
    assert check.requests == curated_rows and check.rows > 0
    assert check.as_dict()["mismatched"] == []


def test_check_names_a_partition_hour_whose_sums_differ(lake: Path) -> None:
    files = open_local_lake(lake).visible_files()
    tampered = Path(rollup_url(files[0]))
    table = pq.read_table(tampered)
    requests = table["requests"].to_pylist()
    requests[0] += 1
    pq.write_table(table.set_column(table.schema.get_field_index("requests"), "requests",
                                    pa.array(requests, pa.int64())), tampered)
    missing = Path(rollup_url(files[-1]))
    missing.unlink()
    check = rollup_check(open_local_lake(lake))
    partitions = {"/".join(p.split("=")[1] for p in Path(f).parent.parts[-3:]) for f in (files[0], files[-1])}
    assert check.mismatches == len(partitions)
    assert set(check.mismatched) == partitions


def test_check_after_compaction(lake: Path) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    report = compact(open_local_lake(lake), CompactionOptions(now, older_than=timedelta(0), grace=timedelta(0)))
    assert report.partitions_compacted == 3
    check = rollup_check(open_local_lake(lake))
    assert check.mismatches == 0
    statuses = Counter(s for f in open_local_lake(lake).visible_files()
                       for s in pq.read_table(f)["elb_status_code"].to_pylist())
    assert check.requests == sum(statuses.values())
