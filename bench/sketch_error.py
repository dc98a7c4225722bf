"""How far the rollup's latency percentiles are from exact ones: the worst relative error of p50, p95 and p99.

The rollup keeps ``target_processing_time`` as log-scale bucket counts (``alblake.rollup.sketch``: relative
accuracy 1%). Here the percentiles read from merged sketches are compared, per group (route template, target,
and all requests), with the exact percentiles of the same times: nearest rank (what the sketch reads: the bound
is 1%) and DuckDB's ``quantile_cont`` (linear interpolation between two ranks, what ``approx_percentile`` is
locally; it can be far from any logged time when the two ranks are far apart in small groups).

Data: the sample generator (``alblake.sample``), AWS's documented example lines, realistic traffic
(``alblake.incidents``) and odd shapes (one request, all equal, zeros, bimodal, heavy tail, idle-timeout 4000 s).

Usage: ``python -m bench.sketch_error``
"""

from __future__ import annotations

import gzip
import math
import random
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from alblake.incidents import write_traffic
from alblake.parse import parse_block
from alblake.rollup.routes import route_template
from alblake.rollup.sketch import bucket_index, exact_quantile, merge, quantile
from alblake.rollup.table import derive
from alblake.sample import write_sample_logs

ROOT = Path(__file__).resolve().parent.parent
PERMILLES = {"p50": 500, "p95": 950, "p99": 990}


def quantile_cont(values: list[float], permille: int) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * permille / 1000
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _relative(estimate: float | None, exact: float | None) -> float:
    if estimate is None or exact is None or estimate == exact:
        return 0.0
    return abs(estimate - exact) / exact if exact else math.inf


def worst(groups: dict[str, list[float]],
          sketches: dict[str, tuple[list[int], list[int]]]) -> dict[str, tuple[float, float, int]]:
    """The worst relative error per percentile: (against nearest rank, against quantile_cont, groups compared)."""
    result = {}
    for name, permille in PERMILLES.items():
        rank = cont = 0.0
        for group, values in groups.items():
            estimate = quantile(*sketches[group], permille)
            rank = max(rank, _relative(estimate, exact_quantile(values, permille)))
            cont = max(cont, _relative(estimate, quantile_cont(values, permille)))
        result[name] = (rank, cont, len(groups))
    return result


def report(label: str, groups: dict[str, list[float]], sketches: dict[str, tuple[list[int], list[int]]]) -> None:
    cells = "  ".join(f"{n} {r * 100:6.3f}% ({c * 100:7.2f}%)" for n, (r, c, _) in worst(groups, sketches).items())
    print(f"{label:<44} {len(groups):>4} groups  {cells}")


def _from_rows(rows: pa.Table, key: str) -> tuple[dict[str, list[float]], dict[str, tuple[list[int], list[int]]]]:
    """Exact times per group from the rows, and the group's sketch merged from the rollup rows of files."""
    groups: dict[str, list[float]] = defaultdict(list)
    for url, target, seconds in zip(rows["request_url"].to_pylist(), rows["target_ip"].to_pylist(),
                                    rows["target_processing_time"].to_pylist(), strict=True):
        if seconds is not None and seconds >= 0:
            group = {"route": route_template(url) or "-", "target": target or "-", "all": "all"}[key]
            groups[group].append(seconds)
    rollup = derive(rows)
    parts: dict[str, list[tuple[list[int], list[int]]]] = defaultdict(list)
    for row in rollup.to_pylist():
        group = {"route": row["route"] or "-", "target": row["target_ip"] or "-", "all": "all"}[key]
        parts[group].append((row["latency_buckets"], row["latency_counts"]))
    sketches = {group: merge(parts[group]) for group in groups}
    return dict(groups), sketches


def _rows_of(logs: Iterable[Path]) -> pa.Table:
    lines = [line for path in logs for line in gzip.decompress(path.read_bytes()).splitlines() if line.strip()]
    return parse_block(b"\n".join(lines) + b"\n").table


def _shape(values: list[float]) -> tuple[dict[str, list[float]], dict[str, tuple[list[int], list[int]]]]:
    counts: dict[int, int] = defaultdict(int)
    for value in values:
        counts[bucket_index(value)] += 1
    ordered = sorted(counts)
    return {"all": values}, {"all": (ordered, [counts[b] for b in ordered])}


def odd_shapes() -> dict[str, list[float]]:
    rng = random.Random(5)
    return {
        "one request (0.237 s)": [0.237],
        "all equal (0.042 s, 1,000 requests)": [0.042] * 1000,
        "zeros and one slow request": [0.0] * 999 + [12.5],
        "mostly zeros (sub-millisecond)": [0.0] * 900 + [round(rng.uniform(0.001, 0.01), 3) for _ in range(100)],
        "bimodal 1 ms / 30 s": [0.001] * 700 + [30.0] * 300,
        "heavy tail (log-normal, sigma 3)": [round(rng.lognormvariate(-3, 3), 3) for _ in range(5000)],
        "idle timeout (4000 s) tail": [round(rng.uniform(0.01, 0.2), 3) for _ in range(980)] + [4000.0] * 20,
        "every millisecond 1..500 ms": [ms / 1000 for ms in range(1, 501)],
        "two requests far apart": [0.001, 9.0],
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        sample = _rows_of(write_sample_logs(Path(work) / "sample", files=12, lines_per_file=2000))
        end = datetime(2026, 11, 24, 12, tzinfo=UTC)
        realistic = _rows_of(write_traffic(Path(work) / "traffic", end=end, hours=1, per_second=20))
    documented = parse_block(b"\n".join(b for b in (ROOT / "tests/data/aws_documented_examples.log").read_bytes()
                                        .splitlines() if b.strip()) + b"\n").table
    print("worst relative error against the exact nearest-rank percentile (and against quantile_cont)")
    for label, rows in (("sample generator", sample), ("realistic traffic", realistic),
                        ("AWS documented example lines", documented)):
        for key in ("route", "target", "all"):
            report(f"{label}, per {key}", *_from_rows(rows, key))
    for label, values in odd_shapes().items():
        report(f"odd shape: {label}", *_shape(values))


if __name__ == "__main__":
    main()
