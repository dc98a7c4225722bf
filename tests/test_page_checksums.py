"""Damaged pages: the lake writes page checksums; compaction and `status --verify` check them. 16 corrupted
bytes inside a compressed page (footer intact) used to go unnoticed: `query` returned wrong timestamps and
compaction copied them into the compacted file."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from alblake.cli import main
from alblake.lake.generational import GenerationalLake
from alblake.lake.local import LocalStore
from tests.log_objects import write_objects


def damage_a_page(path: Path) -> None:
    """Flip 16 bytes in the middle of the `time` column chunk (inside a compressed page), leaving the footer intact."""
    metadata = pq.read_metadata(path)
    names = [metadata.schema.column(i).name for i in range(metadata.num_columns)]
    column = metadata.row_group(0).column(names.index("time"))
    data = bytearray(path.read_bytes())
    offset = column.data_page_offset + column.total_compressed_size // 2  # inside the page payload
    data[offset : offset + 16] = bytes(b ^ 0xFF for b in data[offset : offset + 16])
    path.write_bytes(bytes(data))


def test_a_damaged_page_is_found_by_status_verify_and_refused_by_compaction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_objects(tmp_path / "logs", range(1, 5), (21,), 300)
    lake = tmp_path / "lake"
    assert main(["ingest", str(tmp_path / "logs"), "--lake", str(lake), "--quiet", "--no-batch"]) == 0
    assert main(["compact", "--lake", str(lake), "--older-than", "0", "--grace", "0"]) == 0
    (state,) = GenerationalLake(LocalStore(lake)).states()
    (compacted,) = sorted((lake / state.live).glob("c-*.parquet"))
    damage_a_page(compacted)
    capsys.readouterr()
    assert main(["status", "--lake", str(lake)]) == 0  # footers are intact: the quick status sees nothing
    capsys.readouterr()
    assert main(["status", "--lake", str(lake), "--verify", "--json"]) == 1
    (unreadable,) = json.loads(capsys.readouterr().out)["unreadable_files"]
    assert compacted.name in unreadable and "CRC" in unreadable

    write_objects(tmp_path / "late", range(5, 6), (21,), 300)  # a late object: the hour is merged again
    assert main(["ingest", str(tmp_path / "late"), "--lake", str(lake), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["compact", "--lake", str(lake), "--older-than", "0", "--grace", "0"]) == 1
    err = capsys.readouterr().err
    assert compacted.name in err and "CRC" in err
    (after,) = GenerationalLake(LocalStore(lake)).states()
    assert after.live == state.live  # nothing was copied out of the damaged file
