"""``alblake status`` names the load balancers whose newest delivered object is older than expected (silence is
loud), in text and JSON; the exit status changes only with ``--fail-if-stale``."""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alblake.cli import main
from tests.log_objects import object_lines


def alb_name(end: datetime, lb: str, node: int = 1) -> str:
    return (f"123456789012_elasticloadbalancing_us-east-1_app.{lb}.50dc6c495c0c9188_{end:%Y%m%dT%H%MZ}_"
            f"10.0.0.{node}_abc.log.gz")


@pytest.fixture
def lake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """web delivered five minutes ago; api's newest object ended three hours ago."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    logs = tmp_path / "logs"
    logs.mkdir()
    for lb, end in (("web", now - timedelta(minutes=5)), ("api", now - timedelta(hours=3)),
                    ("api", now - timedelta(hours=3, minutes=5))):
        body = "\n".join(object_lines(1, end.hour, 2)).replace("my-loadbalancer", lb) + "\n"
        (logs / alb_name(end, lb)).write_bytes(gzip.compress(body.encode()))
    assert main(["ingest", str(logs), "--lake", str(tmp_path / "lake"), "--quiet"]) == 0
    capsys.readouterr()
    return tmp_path / "lake"


def test_a_silent_load_balancer_is_named_in_text_and_json_and_fails_only_when_asked(
    lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--lake", str(lake)]) == 0
    out = capsys.readouterr()
    [line] = [line for line in out.out.splitlines() if line.startswith("stale: ")]
    assert line.startswith("stale: api: newest delivery ") and re.search(r", 18[01] minutes ago", line)
    assert "1 load balancer(s) delivered nothing for over 60 minutes" in out.err
    assert "alblake doctor --stack NAME" in out.err

    assert main(["status", "--lake", str(lake), "--json"]) == 0
    [stale] = json.loads(capsys.readouterr().out)["stale_load_balancers"]
    assert stale["name"] == "api" and stale["minutes_ago"] in (180, 181)

    assert main(["status", "--lake", str(lake), "--fail-if-stale"]) == 1
    capsys.readouterr()
    assert main(["status", "--lake", str(lake), "--stale-after", "240", "--fail-if-stale"]) == 0
    assert "stale" not in capsys.readouterr().out
