"""The rollup against the curated table: per partition-hour, load balancer and ELB status code, the rollup's sums
of requests and bytes must equal the curated table's (``alblake status`` reports it as ``rollup``).

Both sides are read from what readers read: the lake's visible data files and their rollup files. DuckDB sums
each side per (partition-hour, ``elb``, ``elb_status_code``); a partition-hour whose sums differ anywhere (or
that one side lacks) is a mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb

from alblake.analysis import lake_dataset
from alblake.lake.layout import Partition
from alblake.ports import Lake
from alblake.rollup.files import rollup_dataset, rollup_files, rollup_url

_MAX_LISTED = 20
__all__ = ["RollupCheck", "rollup_check", "rollup_dataset", "rollup_files", "rollup_url"]


@dataclass(frozen=True)
class RollupCheck:
    """``rows``: rollup rows; ``requests``: the sum of their requests; ``mismatches``: partition-hours whose sums
    disagree with the curated table (``mismatched`` names them, ``elb_name/day/hour``; ``as_dict`` lists the first
    20; ``alblake repair`` re-derives the rollup files of ``mismatched_partitions``)."""

    rows: int
    requests: int
    mismatches: int
    partitions: int = 0
    mismatched: list[str] = field(default_factory=list)
    mismatched_partitions: list[Partition] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "requests": self.requests,
            "mismatches": self.mismatches,
            "partitions": self.partitions,
            "mismatched": self.mismatched[:_MAX_LISTED],
        }


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
    mismatched = [Partition(str(elb_name), str(day), str(hour)) for elb_name, day, hour, differs in compared if differs]
    return RollupCheck(
        rows=int(totals[0]),
        requests=int(totals[1]),
        mismatches=len(mismatched),
        partitions=len(compared),
        mismatched=[f"{p.elb_name}/{p.day}/{p.hour}" for p in mismatched],
        mismatched_partitions=mismatched,
    )
