"""``alblake report`` has the triage section (``q-triage``), and on the incident fixture it names the failing target
first: the report's window is the newest 30 minutes of its scope, so ``--until`` the incident's end puts it there."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from alblake.cli import main
from alblake.lake.generational import open_local_lake
from alblake.triage import findings_of, make_window
from alblake.triage.dimensions import DIMENSIONS
from alblake.triage.local import local_sql
from alblake.triage.query import build_query
from alblake.triage.section import BASELINE, REPORT_DIMENSIONS, WINDOW
from tests import triage_reference
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


@pytest.mark.parametrize("use_rollup", [True, False], ids=["rollup", "curated table"])
def test_the_sections_dimensions_have_the_reference_findings(incident_lake: Path, use_rollup: bool) -> None:
    # the section compares the rollup's dimensions only: for those, the same findings (counts, scores, order) and
    # the same overall row as the reference query over every dimension (tests/triage_reference.py)
    _, end = window_of(FAILING)
    window = make_window(start=end - WINDOW, end=end, baseline=BASELINE)
    names = {d.name for d in REPORT_DIMENSIONS}
    with local_sql(open_local_lake(incident_lake)) as run:
        ours = build_query(window, None, use_rollup=use_rollup, dimensions=REPORT_DIMENSIONS)
        reference = triage_reference.build_query(window, None, use_rollup=use_rollup)
        rows, expected_rows = run(ours.sql).to_pylist(), run(reference.sql).to_pylist()
    found = findings_of(rows, ours, top=1000)
    assert found == [f for f in findings_of(expected_rows, reference, top=1000) if f.dimension in names]
    assert found[0].dimension == "target" and found[0].value == FAILING.target
    assert [r for r in rows if r["dim"] == "all"] == [r for r in expected_rows if r["dim"] == "all"]


def test_the_section_names_the_command_for_the_other_dimensions(incident_lake: Path, tmp_path: Path) -> None:
    _, end = window_of(FAILING)
    out = tmp_path / "report.html"
    assert main(["report", "--lake", str(incident_lake), "--until", end.strftime("%Y-%m-%dT%H:%M"),
                 "--out", str(out)]) == 0
    section = html.unescape(triage_section(out.read_text()))
    start = end - WINDOW
    assert f"alblake triage --from {start:%Y-%m-%dT%H:%M} --to {end:%Y-%m-%dT%H:%M}" in section
    assert "by target ip:port, route template, HTTP verb and target group" in section
    left_out = [d.label for d in DIMENSIONS if d not in REPORT_DIMENSIONS]
    assert left_out and f"The other dimensions ({', '.join(left_out)})" in section
