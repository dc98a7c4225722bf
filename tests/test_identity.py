"""The same object under two paths is one object. An ALB log file's name is unique (account, Region, load
balancer, node, interval, a random part), so it is the object's identity wherever it is read from: a renamed
folder, a local copy of the bucket, S3. Lakes written before (stems from the source id) are migrated by the
next commit of each object, in one swap per partition; objects they hold twice are found and repaired."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow.parquet as pq
import pytest

from alblake.cli import main
from alblake.convert.core import convert_batch
from alblake.ingest.core import ingest_object
from alblake.lake import staged as staged_module
from alblake.lake.generational import GenerationalLake
from alblake.lake.layout import legacy_stem, object_stem
from tests.lake_fakes import URL_PREFIX, MemoryCatalog, MemoryStore, athena_files
from tests.log_objects import write_objects

NODES, HOURS, LINES = range(1, 4), (21, 22), 20


def rows(lake: Path, capsys: pytest.CaptureFixture[str]) -> int:
    capsys.readouterr()
    assert main(["query", "overview", "--lake", str(lake), "--csv"]) == 0
    return int(capsys.readouterr().out.splitlines()[1].split(",")[0])


@pytest.fixture
def legacy_stems(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Commits name objects as lakes did before object identities: by where they were read from."""
    monkeypatch.setattr(staged_module, "object_stem", legacy_stem)
    yield


def test_one_object_read_from_two_folders_is_in_the_lake_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = write_objects(tmp_path / "logs", NODES, HOURS, LINES)
    shutil.copytree(tmp_path / "logs", tmp_path / "renamed")
    lake = tmp_path / "lake"
    for folder in ("logs", "renamed"):
        assert main(["ingest", str(tmp_path / folder), "--lake", str(lake), "--quiet", "--no-batch"]) == 0
    assert rows(lake, capsys) == lines
    assert main(["ingest", str(tmp_path / "renamed"), "--lake", str(lake), "--quiet", "--batch"]) == 0
    assert rows(lake, capsys) == lines


@pytest.mark.parametrize("batch", ["--batch", "--no-batch"])
@pytest.mark.parametrize("compact_first", [False, True])
def test_a_lake_written_with_legacy_stems_is_migrated_by_the_next_ingest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, batch: str, compact_first: bool
) -> None:
    lines = write_objects(tmp_path / "logs", NODES, HOURS, LINES)
    lake = tmp_path / "lake"
    ingest = ["ingest", str(tmp_path / "logs"), "--lake", str(lake), "--quiet", batch]
    with monkeypatch.context() as legacy:
        legacy.setattr(staged_module, "object_stem", legacy_stem)
        assert main(ingest) == 0
    if compact_first:
        assert main(["compact", "--lake", str(lake), "--older-than", "0", "--grace", "0"]) == 0
    assert rows(lake, capsys) == lines
    assert main(ingest) == 0  # the same objects, now under their own stems: replaced, never added
    assert rows(lake, capsys) == lines
    manifests = sorted(p.name for p in (lake / "manifests").iterdir())
    assert manifests == sorted(f"{object_stem(str(p))}.json" for p in (tmp_path / "logs").iterdir())
    assert main(["compact", "--lake", str(lake), "--older-than", "0", "--grace", "0"]) == 0
    assert rows(lake, capsys) == lines
    capsys.readouterr()
    assert main(["status", "--lake", str(lake)]) == 0


def opener(path: Path) -> Callable[[], BinaryIO]:
    return lambda: path.open("rb")


def test_the_migration_never_shows_an_object_twice_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At every store write of the migrating commits, the local reader and the Athena model each show every row
    exactly once."""
    lines = write_objects(tmp_path / "logs", NODES, HOURS, LINES)
    store, catalog = MemoryStore(), MemoryCatalog()
    lake = GenerationalLake(store, catalog)
    paths = sorted((tmp_path / "logs").iterdir())
    checks: list[int] = []

    def check(operation: str, key: str) -> None:
        for view in ([u.removeprefix(URL_PREFIX) for u in lake.visible_files()], athena_files(store, catalog)):
            urls: list[Any] = []
            for name in view:
                table = pq.read_table(io.BytesIO(store.objects[name]), columns=["request_url"])
                urls.extend(table.column(0).to_pylist())
            assert len(urls) == len(set(urls)) == lines, (operation, key)
        checks.append(1)

    with monkeypatch.context() as legacy:
        legacy.setattr(staged_module, "object_stem", legacy_stem)
        for path in paths:
            ingest_object(opener(path), str(path), lake)
    store.before_write = check
    for path in paths[:3]:  # alone
        ingest_object(opener(path), str(path), lake)
    conversion = convert_batch([(opener(path), str(path)) for path in paths[3:]], lake.staging_dir())  # as a batch
    lake.commit_batch(conversion.batch)
    conversion.batch.discard()
    check("end", "")
    assert len(checks) > 20


def test_objects_a_legacy_lake_holds_twice_are_found_and_repaired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], legacy_stems: None
) -> None:
    """Before object identities, ingesting a folder and a renamed copy of it doubled the rows."""
    lines = write_objects(tmp_path / "logs", NODES, HOURS, LINES)
    shutil.copytree(tmp_path / "logs", tmp_path / "copy")
    lake = tmp_path / "lake"
    for folder in ("logs", "copy"):
        assert main(["ingest", str(tmp_path / folder), "--lake", str(lake), "--quiet", "--no-batch"]) == 0
    assert rows(lake, capsys) == 2 * lines
    capsys.readouterr()
    assert main(["status", "--lake", str(lake), "--json"]) == 1
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)["duplicate_objects"]) == len(NODES) * len(HOURS)
    assert "alblake repair" in captured.err
    assert main(["repair", "--lake", str(lake)]) == 0
    assert rows(lake, capsys) == lines
    capsys.readouterr()
    assert main(["status", "--lake", str(lake)]) == 0
