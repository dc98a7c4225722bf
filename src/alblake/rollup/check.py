"""The rollup against the curated table: per partition-hour, load balancer and ELB status code, the rollup's sums
of requests and bytes must equal the curated table's (``alblake status`` reports it as ``rollup``).

Both sides are read from what readers read: the lake's visible data files and their rollup files. DuckDB sums
each side per (partition-hour, ``elb``, ``elb_status_code``); a partition-hour whose sums differ anywhere (or
that one side lacks) is a mismatch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from pyarrow import fs as pafs

from alblake.analysis import lake_dataset
from alblake.lake.layout import DATA_PREFIX
from alblake.ports import Lake
from alblake.rollup.table import NAME, PREFIX, SCHEMA
from alblake.schema import PARTITION_KEYS

_MAX_LISTED = 20


@dataclass(frozen=True)
class RollupCheck:
    """``rows``: rollup rows; ``requests``: the sum of their requests; ``mismatches``: partition-hours whose sums
    disagree with the curated table (``mismatched`` names the first of them, ``elb_name/day/hour``)."""

    rows: int
    requests: int
    mismatches: int
    partitions: int = 0
    mismatched: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "requests": self.requests,
            "mismatches": self.mismatches,
            "partitions": self.partitions,
            "mismatched": self.mismatched,
        }


def rollup_url(data_url: str) -> str:
    """The rollup file next to a data file (``.../alb_logs/<rest>`` -> ``.../alb_rollup_1m/<rest>``)."""
    head, sep, rest = data_url.rpartition("/" + DATA_PREFIX)
    if not sep:
        if data_url.startswith(DATA_PREFIX):
            return PREFIX + data_url[len(DATA_PREFIX) :]
        raise ValueError(f"{data_url}: not a data file of the lake")
    return f"{head}/{PREFIX}{rest}"


def rollup_files(lake: Lake) -> list[str]:
    """The rollup files readers read: the lake's list when it keeps the rollup as a derived table (``alblake.lake.
    derived``), else the sibling of every visible data file (those that exist)."""
    if any(table.name == NAME for table in getattr(lake, "derived", ())):
        return list(lake.visible_files(table=NAME))  # type: ignore[call-arg]
    return [rollup_url(url) for url in lake.visible_files()]


def _partition_expression(path: str) -> pc.Expression:
    values: dict[str, str] = {}
    for segment in path.split("/")[:-1]:
        key, sep, value = segment.partition("=")
        if sep and key in PARTITION_KEYS:
            values[key] = unquote(value)
    expression = pc.scalar(True)
    for key in PARTITION_KEYS:
        known = values.get(key)
        expression = expression & (pc.field(key).is_null() if known is None else pc.field(key) == known)
    return expression


def rollup_dataset(files: Sequence[str]) -> ds.Dataset:
    """The rollup files as one dataset with the rollup's schema and its partition columns."""
    schema = SCHEMA
    for key in PARTITION_KEYS:
        schema = schema.append(pa.field(key, pa.string()))
    if not files:
        return ds.dataset(schema.empty_table())
    filesystem: pafs.FileSystem
    if any(f.startswith("s3://") for f in files):
        from alblake.aws.session import arrow_s3_filesystem

        filesystem, paths = arrow_s3_filesystem(), [f.removeprefix("s3://") for f in files]
    else:
        filesystem, paths = pafs.LocalFileSystem(), list(files)
    paths = _existing(filesystem, paths)
    if not paths:
        return ds.dataset(schema.empty_table())
    return ds.FileSystemDataset.from_paths(
        paths, schema=schema, format=ds.ParquetFileFormat(), filesystem=filesystem,
        partitions=[_partition_expression(p) for p in paths],
    )


def _existing(filesystem: pafs.FileSystem, paths: list[str]) -> list[str]:
    """The paths that exist, from one listing of the rollup's folder (a file missing for a visible data file
    shows as a mismatch of its partition-hour, not as an error)."""
    marker = "/" + PREFIX
    base = paths[0][: paths[0].index(marker) + len(marker) - 1] if marker in paths[0] else PREFIX.rstrip("/")
    found = filesystem.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    present = {info.path for info in found if info.type == pafs.FileType.File}
    return [p for p in paths if p in present]


_SUMS = """
WITH curated AS (
  SELECT elb_name, day, hour, coalesce(elb, '') AS elb, coalesce(elb_status_code, -1) AS status,
         count(*) AS requests, coalesce(sum(received_bytes), 0) AS received, coalesce(sum(sent_bytes), 0) AS sent
  FROM curated_files GROUP BY 1, 2, 3, 4, 5
), rollup AS (
  SELECT elb_name, day, hour, coalesce(elb, '') AS elb, coalesce(elb_status_code, -1) AS status,
         sum(requests) AS requests, sum(received_bytes) AS received, sum(sent_bytes) AS sent
  FROM rollup_files GROUP BY 1, 2, 3, 4, 5
), compared AS (
  SELECT coalesce(c.elb_name, r.elb_name) AS elb_name, coalesce(c.day, r.day) AS day,
         coalesce(c.hour, r.hour) AS hour,
         (c.requests IS DISTINCT FROM r.requests OR c.received IS DISTINCT FROM r.received
          OR c.sent IS DISTINCT FROM r.sent) AS differs
  FROM curated c FULL OUTER JOIN rollup r
    ON c.elb_name = r.elb_name AND c.day = r.day AND c.hour = r.hour AND c.elb = r.elb AND c.status = r.status
)
SELECT elb_name, day, hour, bool_or(differs) AS differs FROM compared GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""


def rollup_check(lake: Lake) -> RollupCheck:
    """Compare the rollup with the curated table, per partition-hour (see the module docstring)."""
    data = list(lake.visible_files())
    rollup = rollup_dataset(rollup_files(lake))
    con = duckdb.connect(":memory:")
    try:
        con.register("curated_files", lake_dataset(data))
        con.register("rollup_files", rollup)
        totals = con.sql("SELECT count(*), coalesce(sum(requests), 0) FROM rollup_files").fetchall()[0]
        compared = con.sql(_SUMS).fetchall()
    finally:
        con.close()
    assert totals is not None
    mismatched = [f"{elb_name}/{day}/{hour}" for elb_name, day, hour, differs in compared if differs]
    return RollupCheck(
        rows=int(totals[0]),
        requests=int(totals[1]),
        mismatches=len(mismatched),
        partitions=len(compared),
        mismatched=mismatched[:_MAX_LISTED],
    )
