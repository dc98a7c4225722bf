"""``alblake report`` has the triage section (``q-triage``), and on the incident fixture it names the failing target
first: the report's window is the newest 30 minutes of its scope, so ``--until`` the incident's end puts it there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alblake.cli import main
from tests.triage_fixtures import FAILING, incident_lake, window_of

__all__ = ["incident_lake"]  # fixture


def triage_section(page: str) -> str:
    found = re.search(r'<section class="card wide" id="q-triage".*?</section>', page, re.S)
    assert found, "the report has no triage section"
    return found.group(0)


def test_the_report_names_the_failing_target_first(
    incident_lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, end = window_of(FAILING)
    out = tmp_path / "report.html"
    assert main(["report", "--lake", str(incident_lake), "--until", end.strftime("%Y-%m-%dT%H:%M"),
                 "--out", str(out)]) == 0
    section = triage_section(out.read_text())
    assert f"to {end:%Y-%m-%d %H:%M} UTC" in section
    rows = re.findall(r'<tr data-mark="row">(.*?)</tr>', section, re.S)
    assert rows, "the section lists no findings"
    cells = [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", rows[0], re.S)]
    assert cells[:4] == ["1", "errors", "target", FAILING.target]


def test_the_report_of_a_quiet_window_has_the_section_without_the_target(
    incident_lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start, _ = window_of(FAILING)
    out = tmp_path / "report.html"
    assert main(["report", "--lake", str(incident_lake), "--until", start.strftime("%Y-%m-%dT%H:%M"),
                 "--out", str(out)]) == 0
    section = triage_section(out.read_text())
    assert FAILING.target not in section
