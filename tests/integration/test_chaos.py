"""The small variant of the fault-injection run (``make chaos`` runs 5,000 objects): ALB objects through the real
ingest and compaction functions and the CLI, against moto_server behind a fault proxy, killed invocations, a
redrive of the dead-letter queue; at the end every valid line is read exactly once by Athena's model and by the
local reader (tests/chaos_run.py says what runs and what is checked)."""

from __future__ import annotations

from pathlib import Path

from tests.chaos_run import Settings, run_chaos

SEED = 11  # a seed whose run meets every kind of fault (the figures are printed on failure)


def test_every_valid_line_once_through_faults_kills_and_a_redrive(tmp_path: Path) -> None:
    report = run_chaos(Settings.small(SEED), tmp_path)
    summary = "\n".join(report.lines())
    assert report.violations == [], summary
    assert report.tally(report.athena) == (0, 0) == report.tally(report.local), summary
    kinds = {**report.faults.injected, **report.figures.kills}
    assert {"lost answer, conditional write", "lost answer, write", "throttled", "500", "connection reset",
            "killed before a write", "killed after a write (publish cut)"} <= set(kinds), summary
    assert report.figures.redriven >= 1 and report.faults.retries > 0, summary
