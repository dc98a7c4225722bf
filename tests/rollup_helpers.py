"""Rollup files for test lakes: what the lake's derived-table mechanism writes next to every data file (the rollup
of that file's rows), written here directly so the rollup can be tested on any lake."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from alblake.lake.generational import open_local_lake
from alblake.rollup.check import rollup_url
from alblake.rollup.table import derive


def write_rollups(lake: Path) -> int:
    """Write the rollup file of every visible data file of the local lake; returns how many."""
    files = open_local_lake(lake).visible_files()
    for data in files:
        target = Path(rollup_url(data))
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(derive(pq.read_table(data)), target, compression="zstd")
    return len(files)
