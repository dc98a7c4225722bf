"""The restructured triage query (one grouped scan per source, only the window's values scored) gives exactly what
the query it replaced gave (``tests/triage_reference.py``): the same findings with the same counts and scores, and
the same overall row, on the incident day, from the rollup and from the curated table, with and without --where."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alblake.lake.generational import open_local_lake
from alblake.triage import findings_of, make_window, parse_where
from alblake.triage.local import local_sql
from alblake.triage.query import TriageQuery, build_query
from tests import triage_reference
from tests.triage_fixtures import FAILING, SLOW, incident_lake, window_of

__all__ = ["incident_lake"]  # fixture

WINDOWS = {
    "failing target": window_of(FAILING),
    "slow route": window_of(SLOW),
    "quiet": (datetime(2026, 11, 24, 3, 0, tzinfo=UTC), datetime(2026, 11, 24, 3, 20, tzinfo=UTC)),
    "no requests": (datetime(2026, 11, 26, 3, 0, tzinfo=UTC), datetime(2026, 11, 26, 3, 20, tzinfo=UTC)),
}
WHERES = [None, "target_ip = '10.0.3.21'", "elb_status_code = 502 AND lower(user_agent) LIKE '%mozilla%'"]


def _answer(rows: list[dict[str, Any]], query: TriageQuery) -> tuple[list[Any], dict[str, Any]]:
    overall = next((r for r in rows if r["dim"] == "all"), {})
    return findings_of(rows, query, top=1000), overall


@pytest.mark.parametrize("where", WHERES)
@pytest.mark.parametrize("window", sorted(WINDOWS))
def test_the_query_agrees_with_the_one_it_replaced(incident_lake: Path, window: str, where: str | None) -> None:
    start, end = WINDOWS[window]
    chosen = make_window(start=start, end=end)
    predicate = parse_where(where) if where else None
    with local_sql(open_local_lake(incident_lake)) as run:
        for use_rollup in (True, False):
            new = build_query(chosen, predicate, use_rollup=use_rollup)
            old = triage_reference.build_query(chosen, predicate, use_rollup=use_rollup)
            assert (new.from_rollup, new.from_curated) == (old.from_rollup, old.from_curated)
            found, overall = _answer(run(new.sql).to_pylist(), new)
            assert (found, overall) == _answer(run(old.sql).to_pylist(), old)
            if window in ("failing target", "slow route") and where is None:
                assert found  # the comparison is not between two empty answers
