"""Converting bytes into a local lake in tests, and reading what landed."""

from __future__ import annotations

import io
import json
from pathlib import Path

from alblake.ingest.core import IngestedObject, ingest_object
from alblake.lake.derived import default_derived_tables
from alblake.lake.generational import open_lake
from alblake.lake.local import LocalStore

KEY = (
    "AWSLogs/1/elasticloadbalancing/us-east-2/2018/07/02/"
    "1_elasticloadbalancing_us-east-2_app.my-lb.1_20180702T2225Z_10.0.0.1_x.log.gz"
)


def convert_bytes(
    data: bytes, lake: Path, source_id: str = KEY, block_size: int = 1 << 24, store: LocalStore | None = None
) -> IngestedObject:
    lake_in_store = open_lake(store or LocalStore(lake))
    return ingest_object(lambda: io.BytesIO(data), source_id, lake_in_store, block_size=block_size)


def quarantine_file(path: Path) -> tuple[list[dict[str, object]], dict[str, object]]:
    """The stored records of a quarantine file and its summary (always the last record)."""
    *records, last = [json.loads(line) for line in path.open(encoding="utf-8")]
    assert all("summary" not in record for record in records)
    return records, last["summary"]


def lake_files(lake: Path) -> list[str]:
    """The lake's files, without the derived tables' siblings of its data files (tested with those tables)."""
    derived = tuple(table.prefix for table in default_derived_tables())
    return sorted(str(p.relative_to(lake)) for p in lake.rglob("*")
                  if p.is_file() and not str(p.relative_to(lake)).startswith(derived))
