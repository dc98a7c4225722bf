"""scripts/local_invoke.py end to end (moto_server): the SPICE refresh is reported truthfully."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    shutil.which("moto_server", path=str(Path(sys.executable).parent)) is None and shutil.which("moto_server") is None,
    reason="moto_server not installed",
)
def test_local_invoke_shows_the_refresh_debounce_labelled_as_stubbed(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "scripts/local_invoke.py", "events/s3-put.json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={"PATH": "/usr/bin:/bin", "LINES": "200", "HOME": str(tmp_path)},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert '"status": "processed"' in out
    assert '"refresh": "error"' not in out
    # moto_server has no list_ingestions: the QuickSight part is a Stubber, and the output says so.
    assert "QuickSight list_ingestions unsupported by moto_server" in out
    assert "STUBBED" in out
    assert '"refresh": "requested"' in out
    assert "is RUNNING -> skipped-in-progress" in out
    assert "-> skipped-recent" in out
