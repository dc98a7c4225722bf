"""The merge's memory is bounded by bytes, not rows: rows with 8 KB user agents (the most ALB writes) must not
make an input batch, a run, the k-way merge or an output row group hold more than their byte budgets.

The budgets are scaled down so that a small fixture needs many runs (and merge passes); the peak is what Arrow's
allocator saw during the merge (a proxy of the pool the merge allocates from)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alblake.lake import merge
from alblake.lake.merge import MergeInput, merge_sorted, read_lineage
from alblake.schema import ARROW_SCHEMA

MiB = 1 << 20
AGENT_BYTES = 8192
ROWS_PER_INPUT = 1_500
INPUTS = 6
BUDGETS = {
    "INPUT_BATCH_BYTES": MiB // 2,
    "RUN_BYTES": 4 * MiB,
    "CHUNK_BYTES": MiB // 4,
    "MAX_FAN_IN": 4,
    "STEP_BYTES": MiB,
    "GROUP_BYTES": 2 * MiB,
}
# what the merge may hold at once: a run and its sorted copy, an input batch, the k-way merge's batches of each
# run, a step and its sorted copy, an output row group being filled (and one step over it); x 1.5 for the
# writers' and readers' own buffers
BOUND = 1.5 * (2 * 4 * MiB + MiB // 2 + 4 * MiB // 4 + 2 * MiB + 2 * MiB + MiB)


def _wide_rows(tag: str, rng: np.random.Generator) -> pa.Table:
    """Rows of one hour (some times equal) whose user agents are 8 KB, each distinct; the URL names the row."""
    times = rng.integers(0, 3_600, ROWS_PER_INPUT) * 1_000_000  # whole seconds: many rows share a time
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789 ;()/.", dtype=np.uint8)
    text = letters[rng.integers(0, len(letters), AGENT_BYTES + ROWS_PER_INPUT)].tobytes().decode()
    columns = {}
    for field in ARROW_SCHEMA:
        if field.name == "time":
            columns[field.name] = pa.array(times, pa.int64()).cast(field.type)
        elif field.name == "request_url":
            columns[field.name] = pa.array([f"{tag}/{i}" for i in range(ROWS_PER_INPUT)], field.type)
        elif field.name == "user_agent":
            columns[field.name] = pa.array([text[i : i + AGENT_BYTES] for i in range(ROWS_PER_INPUT)], field.type)
        else:
            columns[field.name] = pa.nulls(ROWS_PER_INPUT, field.type)
    return pa.table(columns, schema=ARROW_SCHEMA)


def test_merging_wide_rows_holds_a_bounded_number_of_bytes_and_keeps_every_row_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(11)
    inputs = []
    for index in range(INPUTS):
        path = tmp_path / f"in-{index}.parquet"
        pq.write_table(_wide_rows(f"s{index}", rng), path)  # one row group of ~12 MB decoded
        inputs.append(MergeInput(f"in-{index}", path, [f"s{index}"]))
    for name, value in BUDGETS.items():
        monkeypatch.setattr(merge, name, value, raising=False)
    watched = pa.proxy_memory_pool(pa.system_memory_pool())
    monkeypatch.setattr(pa, "system_memory_pool", lambda: watched)  # the pool the merge allocates from
    out = tmp_path / "out"
    out.mkdir()

    result = merge_sorted(inputs, out, "tok")

    assert watched.max_memory() < BOUND, f"{watched.max_memory() / MiB:.1f} MiB held at once"
    total = INPUTS * ROWS_PER_INPUT * AGENT_BYTES
    assert total > 3 * BOUND  # the rows are far more than the merge held
    seen: Counter[str] = Counter()
    previous = -1
    for file in result.files:
        table = pq.read_table(file.data_path)
        times = table.column("time").cast(pa.int64()).to_numpy()
        assert (np.diff(times) >= 0).all() and times[0] >= previous
        previous = int(times[-1])
        metadata = pq.read_metadata(file.data_path)
        for group in range(metadata.num_row_groups):  # row groups are bounded by bytes too
            assert metadata.row_group(group).num_rows * AGENT_BYTES <= BUDGETS["GROUP_BYTES"] + BUDGETS["STEP_BYTES"]
        stems, lineage = read_lineage(file.lineage_path, file.data_path.name)
        urls = table.column("request_url").to_pylist()
        assert [stems[i] for i in lineage] == [url.split("/")[0] for url in urls]
        seen.update(urls)
    assert seen == Counter(f"s{i}/{r}" for i in range(INPUTS) for r in range(ROWS_PER_INPUT))
    assert result.rows_by_stem == Counter({f"s{i}": ROWS_PER_INPUT for i in range(INPUTS)})


def test_runs_beyond_the_fan_in_are_merged_in_passes_keeping_every_row_once_sorted_with_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With at most two runs read at once, eleven runs take several passes (and a merged run is merged again)."""
    inputs = []
    for index in range(4):
        path = tmp_path / f"in-{index}.parquet"
        pq.write_table(_wide_rows(f"s{index}", np.random.default_rng(index)).slice(0, 400), path)
        inputs.append(MergeInput(f"in-{index}", path, [f"s{index}"]))
    monkeypatch.setattr(merge, "MAX_FAN_IN", 2, raising=False)
    monkeypatch.setattr(merge, "INPUT_BATCH_BYTES", 150 * AGENT_BYTES, raising=False)
    out = tmp_path / "out"
    out.mkdir()

    result = merge_sorted(inputs, out, "tok", run_rows=150, chunk_rows=32)

    assert not list(out.glob("*.arrows"))  # every run and merged run deleted once read
    table = pa.concat_tables(pq.read_table(file.data_path) for file in result.files)
    assert (np.diff(table.column("time").cast(pa.int64()).to_numpy()) >= 0).all()
    urls = table.column("request_url").to_pylist()
    assert Counter(urls) == Counter(f"s{i}/{r}" for i in range(4) for r in range(400))
    sources = []
    for file in result.files:
        stems, lineage = read_lineage(file.lineage_path, file.data_path.name)
        sources += [stems[i] for i in lineage]
    assert sources == [url.split("/")[0] for url in urls]
