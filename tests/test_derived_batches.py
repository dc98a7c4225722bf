"""A derived table's sibling is written from only the columns it reads, in batches bounded by bytes: a compacted
file of wide rows (8 KB user agents, long URLs) must not enter memory whole or 128 Ki rows at a time."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alblake.lake import derived
from alblake.lake.derived import DERIVE_BATCH_BYTES, DERIVE_BATCH_ROWS, batch_rows, write_derived
from alblake.schema import ARROW_SCHEMA
from tests.lake_fakes import EchoTable


class _CountingEcho(EchoTable):
    """EchoTable that records the columns and sizes of the batches it is given."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, list[str]]] = []

    def derive(self, rows: pa.Table) -> pa.Table:
        self.batches.append((rows.num_rows, [c for c in rows.column_names if rows[c].null_count < rows.num_rows]))
        return super().derive(rows)


def _file(path: Path, rows: int, url_bytes: int, agent_bytes: int) -> Path:
    columns = {f.name: pa.nulls(rows, f.type) for f in ARROW_SCHEMA}
    columns["request_url"] = pa.array([f"/{i:08d}/" + "u" * url_bytes for i in range(rows)])
    columns["user_agent"] = pa.array(["a" * agent_bytes] * rows)
    pq.write_table(pa.table(columns, schema=ARROW_SCHEMA), path, row_group_size=4096)
    return path


def test_only_the_declared_columns_are_read(tmp_path: Path) -> None:
    data = _file(tmp_path / "data.parquet", 2000, 10, 8000)
    table = _CountingEcho()
    assert write_derived(table, data, tmp_path / "echo.parquet") == 2000
    assert {tuple(names) for _, names in table.batches} == {("request_url",)}  # the user agents stay on disk
    urls = pq.read_table(tmp_path / "echo.parquet").column("request_url").to_pylist()
    assert urls == pq.read_table(data, columns=["request_url"]).column("request_url").to_pylist()


def test_wide_rows_come_in_batches_bounded_by_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows, url_bytes = 6000, 2000
    data = _file(tmp_path / "data.parquet", rows, url_bytes, 10)
    expected = max(1024, DERIVE_BATCH_BYTES // (url_bytes + 10))
    assert batch_rows(pq.ParquetFile(data), ["request_url"]) in range(expected - 200, expected + 200)
    assert batch_rows(pq.ParquetFile(data), ["request_url"]) < DERIVE_BATCH_ROWS
    monkeypatch.setattr(derived, "DERIVE_BATCH_BYTES", 4 * 1024 * 1024)  # ~2,000 rows a batch
    table = _CountingEcho()
    assert write_derived(table, data, tmp_path / "echo.parquet") == rows
    sizes = [n for n, _ in table.batches]
    assert sum(sizes) == rows and len(sizes) >= 3 and max(sizes) <= 2100
