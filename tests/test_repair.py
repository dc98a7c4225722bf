"""Files the lake names but lost (a folder deleted from outside; before writers checked their own state writes, a
compaction that deleted the folder it had just made live): ``status`` names the damaged partitions and exits 1,
``repair`` brings every row back exactly once from the source objects, or names what it cannot."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from alblake.cli import main
from alblake.lake.generational import GenerationalLake, open_local_lake
from tests.log_objects import write_objects


def rows(lake: Path, capsys: pytest.CaptureFixture[str]) -> int:
    capsys.readouterr()
    assert main(["query", "overview", "--lake", str(lake), "--csv"]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    return int(dict(zip(header.replace('"', "").split(","), row.split(","), strict=True))["requests"])


def status(lake: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    capsys.readouterr()
    code = main(["status", "--lake", str(lake), "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def compacted_lake(tmp_path: Path) -> tuple[Path, Path, int]:
    logs = tmp_path / "logs"
    lines = write_objects(logs, range(1, 7), (21, 22), 40)
    lake = tmp_path / "lake"
    assert main(["ingest", str(logs), "--lake", str(lake), "--quiet", "--no-batch"]) == 0
    assert main(["compact", "--lake", str(lake), "--older-than", "0", "--grace", "0"]) == 0
    lines += write_objects(tmp_path / "late", range(7, 9), (21,), 40)  # late objects: per-object files
    assert main(["ingest", str(tmp_path / "late"), "--lake", str(lake), "--quiet", "--no-batch"]) == 0
    return logs, lake, lines


def live_folder_of_hour(lake: Path, hour: str) -> Path:
    genlake = open_local_lake(lake)
    assert isinstance(genlake, GenerationalLake)
    (state,) = [s for s in genlake.states() if s.partition.hour == hour]
    return lake / state.live


def test_a_deleted_compacted_folder_is_reported_and_repaired_exactly_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, lake, lines = compacted_lake(tmp_path)
    assert rows(lake, capsys) == lines
    shutil.rmtree(live_folder_of_hour(lake, "21"))  # compacted rows of 6 objects and 2 late per-object files

    code, body, err = status(lake, capsys)
    assert code == 1
    (damage,) = body["damaged_partitions"]
    assert damage["partition"] == "elb_name=my-loadbalancer/day=2018-07-02/hour=21"
    assert len(damage["objects"]) == 8 and len(damage["missing_files"]) == 3
    assert f"alblake repair --lake {lake}" in err
    assert rows(lake, capsys) == lines - 8 * 40

    assert main(["repair", "--lake", str(lake), "--source-root", str(tmp_path), "--dry-run"]) == 0
    assert rows(lake, capsys) == lines - 8 * 40  # a dry run changes nothing
    assert main(["repair", "--lake", str(lake), "--source-root", str(tmp_path)]) == 0
    assert rows(lake, capsys) == lines
    assert status(lake, capsys)[0] == 0
    capsys.readouterr()
    assert main(["repair", "--lake", str(lake), "--source-root", str(tmp_path)]) == 0
    assert "nothing to repair" in capsys.readouterr().out
    assert main(["compact", "--lake", str(lake), "--older-than", "0", "--grace", "0"]) == 0
    assert rows(lake, capsys) == lines
    assert len(list(live_folder_of_hour(lake, "21").iterdir())) == 1  # compacted again into one file


def test_a_deleted_hive_folder_is_reported_and_repaired(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = tmp_path / "logs"
    lines = write_objects(logs, range(1, 4), (21, 22), 30)
    lake = tmp_path / "lake"
    assert main(["ingest", str(logs), "--lake", str(lake), "--quiet", "--no-batch"]) == 0
    shutil.rmtree(lake / "alb_logs/elb_name=my-loadbalancer/day=2018-07-02/hour=22")
    code, body, _ = status(lake, capsys)
    assert code == 1 and len(body["damaged_partitions"][0]["objects"]) == 3
    assert main(["repair", "--lake", str(lake), "--source-root", str(tmp_path)]) == 0
    assert rows(lake, capsys) == lines
    assert status(lake, capsys)[0] == 0


def test_sources_that_are_gone_are_named_and_the_rest_is_repaired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs, lake, lines = compacted_lake(tmp_path)
    gone = sorted(logs.iterdir())[0]  # hour 21 of node 1
    gone.unlink()
    shutil.rmtree(live_folder_of_hour(lake, "21"))
    capsys.readouterr()
    assert main(["repair", "--lake", str(lake), "--source-root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert gone.name in err and "no longer there" in err and "--accept-loss" in err
    assert rows(lake, capsys) == lines - 40  # every other object's rows are back, once
    code, body, _ = status(lake, capsys)
    assert code == 1  # the lost rows stay reported until the loss is accepted
    (damage,) = body["damaged_partitions"]
    assert len(damage["objects"]) == 1
    assert main(["repair", "--lake", str(lake), "--source-root", str(tmp_path), "--accept-loss"]) == 0
    code, body, _ = status(lake, capsys)
    assert code == 0 and body["rows"] == lines - 40


@pytest.mark.parametrize("garbage", [b"{not json", b'{"live": 7}', b'{"format": 1, "live": "alb_logs/x/"}'])
def test_a_corrupt_state_hides_only_its_partition_and_repair_rebuilds_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], garbage: bytes
) -> None:
    """One corrupt partition-state object made the whole lake unreadable (query, report and status failed)."""
    _, lake, lines = compacted_lake(tmp_path)
    genlake = open_local_lake(lake)
    assert isinstance(genlake, GenerationalLake)
    state_file = lake / "compaction/state/elb_name=my-loadbalancer/day=2018-07-02/hour=21.json"
    state_file.write_bytes(garbage)
    hour_22 = 6 * 40
    code, body, err = status(lake, capsys)
    assert code == 1 and f"alblake repair --lake {lake}" in err
    readable = body["rows"]
    assert readable in (hour_22, lines)  # a state whose live folder still reads (its other fields broken) shows it
    (damage,) = body["damaged_partitions"]
    assert damage["partition"].endswith("hour=21") and damage["unreadable_state"]
    assert rows(lake, capsys) == readable

    assert main(["repair", "--lake", str(lake), "--source-root", str(tmp_path)]) == 0
    assert rows(lake, capsys) == lines
    assert status(lake, capsys)[0] == 0
    assert main(["compact", "--lake", str(lake), "--older-than", "0", "--grace", "0"]) == 0
    assert rows(lake, capsys) == lines
    capsys.readouterr()
    assert main(["ingest", str(tmp_path / "late"), "--lake", str(lake), "--quiet", "--no-batch"]) == 0
    assert rows(lake, capsys) == lines  # a re-delivery after the rebuild replaces, never adds
