"""``alblake status``: delivery gaps as intervals (counted, never materialised), load balancers with characters
that partition paths escape, counted once."""

from __future__ import annotations

import gzip
import json
import resource
from pathlib import Path
from typing import Any

import pytest

from alblake.cli import main
from tests.log_objects import DOCUMENTED, object_lines


def status(lake: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["status", "--lake", str(lake), "--json"]) == 0
    body: dict[str, Any] = json.loads(capsys.readouterr().out)
    return body


def alb_name(end: str, node: int = 1, lb: str = "my-loadbalancer") -> str:
    return f"123456789012_elasticloadbalancing_us-east-1_app.{lb}.50dc6c495c0c9188_{end}_10.0.0.{node}_abc.log.gz"


def test_two_deliveries_forty_years_apart_are_one_gap_of_4_2_million_missed_deliveries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every missed 5-minute delivery was listed: 4.2 M of them took 588 MiB."""
    logs = tmp_path / "logs"
    logs.mkdir()
    for end in ("19800101T0005Z", "20200101T0005Z", "20200101T0010Z", "20200101T0025Z"):
        (logs / alb_name(end)).write_bytes(gzip.compress(("\n".join(object_lines(1, 21, 3)) + "\n").encode()))
    lake = tmp_path / "lake"
    assert main(["ingest", str(logs), "--lake", str(lake), "--quiet"]) == 0
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    lb = status(lake, capsys)["load_balancers"]["my-loadbalancer"]
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024  # KiB: far below 588 MiB
    forty_years = (40 * 365 + 10) * 24 * 12 - 1  # 5-minute deliveries between 1980 and 2020 (10 leap days)
    assert lb["gaps"] == forty_years + 2
    assert lb["gap_intervals"] == [
        {"node": "10.0.0.1", "after": "1980-01-01T00:05:00Z", "before": "2020-01-01T00:05:00Z",
         "missed": forty_years},
        {"node": "10.0.0.1", "after": "2020-01-01T00:10:00Z", "before": "2020-01-01T00:25:00Z",
         "missed": 2},
    ]  # fmt: skip
    assert lb["newest_delivery"] == "2020-01-01T00:25:00Z"


def test_a_load_balancer_whose_name_partition_paths_escape_is_listed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "odd.log"
    log.write_text(DOCUMENTED.replace("app/my-loadbalancer/", "app/my_lb.ü/") + "\n")
    lake = tmp_path / "lake"
    assert main(["ingest", str(log), "--lake", str(lake), "--quiet"]) == 0
    body = status(lake, capsys)
    assert list(body["load_balancers"]) == ["my_lb.ü"]
    assert body["load_balancers"]["my_lb.ü"]["objects"] == 1 and body["rows"] == 1
