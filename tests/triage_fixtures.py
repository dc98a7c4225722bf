"""A generated day with two injected incidents, ingested into a lake (the lake writes the rollup with it):

- 08:00-08:20 UTC, target 10.0.3.21:9000 answers every request with 502 (``FAILING``);
- 14:00-14:20 UTC, route /api/v1/users/{id}/orders takes 25 times longer (``SLOW``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alblake.incidents import FailingTarget, SlowRoute, write_traffic
from alblake.ingest.runner import ingest_paths

DAY = datetime(2026, 11, 24, tzinfo=UTC)
FAILING = FailingTarget("10.0.3.21:9000", DAY + timedelta(hours=8), minutes=20)
SLOW = SlowRoute("/api/v1/users/{id}/orders", DAY + timedelta(hours=14), minutes=20)
SLOW_ROUTE = "/api/v1/users/{id}/orders"


def window_of(incident: FailingTarget | SlowRoute) -> tuple[datetime, datetime]:
    return incident.start, incident.start + timedelta(minutes=incident.minutes)


@pytest.fixture(scope="session")
def incident_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("incidents")
    logs = write_traffic(root / "logs", end=DAY + timedelta(days=1), hours=24, per_second=1.0,
                         incidents=[FAILING, SLOW], seed=2026)
    summary = ingest_paths([str(p) for p in logs], root / "lake", jobs=1)
    assert summary.failures == [] and summary.quarantined == 0
    return root / "lake"
