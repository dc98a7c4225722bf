"""``alblake status`` checks the rollup against the curated table (``rollup`` in ``--json``, a line in the table,
exit 1 and a warning naming ``alblake repair`` on a mismatch), and ``alblake repair`` re-derives the rollup files
of the partition-hours that disagree, from their data files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alblake.cli import main
from alblake.ingest.runner import ingest_paths
from alblake.lake.generational import open_local_lake
from alblake.lake.layout import Partition
from alblake.rollup.files import rollup_url
from alblake.sample import write_sample_logs


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    logs = write_sample_logs(tmp_path / "logs", files=6, lines_per_file=800, seed=4)
    summary = ingest_paths([str(p) for p in logs], tmp_path / "lake", jobs=1, batch=False)
    assert summary.failures == []
    return tmp_path / "lake"


def status_json(lake: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any], str]:
    capsys.readouterr()
    code = main(["status", "--lake", str(lake), "--json", "--until", "2100-01-01", *extra])
    captured = capsys.readouterr()
    body: dict[str, Any] = json.loads(captured.out)
    return code, body, captured.err


def curated_rows(lake: Path) -> int:
    return sum(pq.read_metadata(f).num_rows for f in open_local_lake(lake).visible_files())


def rollup_rows(lake: Path) -> int:
    return sum(pq.read_metadata(rollup_url(f)).num_rows for f in open_local_lake(lake).visible_files())


def tamper(data_file: str) -> str:
    """Add one request to the first row of a data file's rollup file; the partition-hour it belongs to."""
    path = Path(rollup_url(data_file))
    table = pq.read_table(path)
    requests = table["requests"].to_pylist()
    requests[0] += 1
    column = table.schema.get_field_index("requests")
    pq.write_table(table.set_column(column, "requests", pa.array(requests, pa.int64())), path)
    elb_name, day, hour = (part.split("=", 1)[1] for part in Path(data_file).parent.parts[-3:])
    return f"{elb_name}/{day}/{hour}"


def test_a_consistent_lake_has_no_mismatch(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, body, err = status_json(lake, capsys)
    assert code == 0 and "rollup" not in err
    assert body["rollup"] == {
        "rows": rollup_rows(lake), "requests": curated_rows(lake), "mismatches": 0, "partitions": 3, "mismatched": []
    }
    capsys.readouterr()
    assert main(["status", "--lake", str(lake), "--until", "2100-01-01"]) == 0
    out = capsys.readouterr().out
    assert f"rollup rows {rollup_rows(lake):,}  requests {curated_rows(lake):,}  mismatched partition-hours 0" in out


def test_a_tampered_rollup_file_is_one_mismatch_that_repair_fixes(
    lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = open_local_lake(lake).visible_files()
    partition = tamper(files[0])
    code, body, err = status_json(lake, capsys)
    assert code == 1
    assert body["rollup"]["mismatches"] == 1 and body["rollup"]["mismatched"] == [partition]
    assert body["rollup"]["requests"] == curated_rows(lake) + 1
    assert f"'alblake repair --lake {lake}'" in err and "1 partition-hour(s)" in err

    capsys.readouterr()
    assert main(["repair", "--lake", str(lake)]) == 0
    out = capsys.readouterr().out
    assert f"{partition}: rollup files re-derived from" in out
    code, body, err = status_json(lake, capsys)
    assert code == 0 and body["rollup"]["mismatches"] == 0 and body["rollup"]["requests"] == curated_rows(lake)
    assert open_local_lake(lake).derived_gaps("alb_rollup_1m") == []


def test_a_missing_rollup_file_is_written_again_by_repair(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = open_local_lake(lake).visible_files()
    Path(rollup_url(files[-1])).unlink()
    code, body, _ = status_json(lake, capsys)
    assert code == 1 and body["rollup"]["mismatches"] == 1
    assert main(["repair", "--lake", str(lake)]) == 0
    code, body, _ = status_json(lake, capsys)
    assert code == 0 and body["rollup"]["mismatches"] == 0 and body["rollup"]["rows"] == rollup_rows(lake)


def test_the_check_stays_within_the_status_scope(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = open_local_lake(lake).visible_files()
    partition = tamper(files[0])
    others = sorted({key[1].elb_name for key in open_local_lake(lake).visible_keys()} - {partition.split("/")[0]})
    scoped: list[Partition] = [p for _, p in open_local_lake(lake).visible_keys() if p.elb_name in others]
    assert others and scoped, "the sample writes several load balancers"
    code, body, _ = status_json(lake, capsys, "--elb", others[0])
    assert code == 0 and body["rollup"]["mismatches"] == 0
    code, body, _ = status_json(lake, capsys, "--elb", partition.split("/")[0])
    assert code == 1 and body["rollup"]["mismatched"] == [partition]
