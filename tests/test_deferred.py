"""Deferred imports (``alblake.deferred``): a deferred module runs at its first use, once, whatever the import
statement or the thread; the command line defers pyarrow's modules the reading commands never use, and a reading
command runs without importing them."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from alblake.cli import main
from alblake.deferred import DeferredModule, defer, is_loaded
from alblake.sample import write_sample_logs


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A package ``deferpkg`` whose submodule ``heavy`` counts how often it runs (in ``deferpkg.runs``)."""
    root = tmp_path / "deferpkg"
    root.mkdir()
    (root / "__init__.py").write_text("runs = []\n")
    (root / "heavy.py").write_text("import time\nimport deferpkg\ndeferpkg.runs.append(1)\ntime.sleep(0.05)\n"
                                   "VALUE = 42\n\ndef double(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "deferpkg"
    for name in [n for n in sys.modules if n == "deferpkg" or n.startswith("deferpkg.")]:
        del sys.modules[name]


def test_a_deferred_module_runs_at_its_first_use_and_only_then(package: str) -> None:
    defer(f"{package}.heavy")
    runs = importlib.import_module(package).runs
    import deferpkg.heavy as heavy
    from deferpkg import heavy as same

    assert heavy is same and isinstance(heavy, DeferredModule)
    assert runs == [] and not is_loaded(f"{package}.heavy")
    assert heavy.double(heavy.VALUE) == 84  # the first attribute imports it
    assert runs == [1] and is_loaded(f"{package}.heavy")
    from deferpkg.heavy import VALUE

    assert VALUE == 42 and runs == [1]
    real = sys.modules[f"{package}.heavy"]
    assert not isinstance(real, DeferredModule) and real.VALUE == 42  # later imports get the module itself


def test_threads_that_touch_it_at_once_import_it_once(package: str) -> None:
    defer(f"{package}.heavy")
    runs = importlib.import_module(package).runs
    stand_in = sys.modules[f"{package}.heavy"]
    seen: list[int] = []
    barrier = threading.Barrier(8)

    def use() -> None:
        barrier.wait()
        seen.append(stand_in.VALUE)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [42] * 8 and runs == [1]


def test_a_module_already_imported_is_not_deferred(package: str) -> None:
    importlib.import_module(f"{package}.heavy")
    defer(f"{package}.heavy")
    assert not isinstance(sys.modules[f"{package}.heavy"], DeferredModule)


# What the command line defers; a reading command on a local lake imports none of their compiled parts.
PROBE = """
import json, runpy, sys
sys.argv = ["alblake", *json.loads(sys.argv[1])]
try:
    runpy.run_module("alblake", run_name="__main__")
except SystemExit as stop:
    code = stop.code
native = ["pyarrow._compute", "pyarrow._parquet", "pyarrow._dataset", "pyarrow._fs"]
print(json.dumps({"code": code, "imported": [n for n in native if n in sys.modules]}))
"""


def _command(*argv: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(list(argv))], capture_output=True, text=True,
                          check=True)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("deferred")
    write_sample_logs(root / "logs", files=3, lines_per_file=200, malformed_every=0)
    assert main(["ingest", str(root / "logs"), "--lake", str(root / "lake"), "--quiet"]) == 0
    return root / "lake"


def test_reading_commands_start_without_the_deferred_modules(lake: Path, tmp_path: Path) -> None:
    report = _command("report", "--lake", str(lake), "--out", str(tmp_path / "report.html"))
    assert report == {"code": 0, "imported": []}
    assert (tmp_path / "report.html").stat().st_size > 10_000
    assert _command("query", "overview", "--lake", str(lake)) == {"code": 0, "imported": []}


def test_commands_that_use_them_import_them_when_they_do(lake: Path) -> None:
    status = _command("status", "--lake", str(lake), "--json")
    assert status["code"] == 0 and "pyarrow._parquet" in status["imported"]  # type: ignore[operator]
