"""The small variant of the fault-injection run (``make chaos`` runs 5,000 objects): ALB objects through the real
ingest and compaction functions and the CLI, against moto_server behind a fault proxy, killed invocations, late
objects (some through a backfill whose sends meet the faults), a redrive of the dead-letter queue; at the end every
valid line is read exactly once by Athena's model and by the local reader, and the rollup sums to the curated
table (tests/chaos_run.py says what runs and what is checked)."""

from __future__ import annotations

from pathlib import Path

from tests.chaos_run import KILL_KINDS, Settings, run_chaos

SEED = 11
EVERY_KIND = {"lost answer, conditional write", "lost answer, write", "throttled", "500", "connection reset",
              *KILL_KINDS}


def test_every_valid_line_once_through_faults_kills_late_objects_and_a_redrive(tmp_path: Path) -> None:
    report = run_chaos(Settings.small(SEED), tmp_path)
    summary = "\n".join(report.lines())
    assert report.violations == [], summary
    assert report.tally(report.athena) == (0, 0) == report.tally(report.local), summary
    # each kind is forced once whatever the seed draws: no run can miss one
    kinds = {**report.faults.injected, **report.figures.kills}
    assert {kind for kind, count in kinds.items() if count >= 1} >= EVERY_KIND, summary
    assert sum(report.faults.forced_injected.values()) == 5 and not report.faults.forced, summary
    late = [o for o in report.objects if o.late]
    assert len(late) == 4 and sum(o.backfilled for o in late) == 2, summary
    assert report.figures.backfill_runs >= 1 and report.figures.redriven >= 1, summary  # the corrupt object
    assert report.faults.retries > 0 and "0 mismatched" in report.figures.mid_run, summary
