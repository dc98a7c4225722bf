"""Erasure, expiry and the lake's policy on local lakes: exactly the matching rows go, through the lake's swaps; the
criteria persist so that re-ingest never brings them back (counted as erased); the audit record never holds the
values; expired hours leave the lake, its catalog and their objects' manifests; the commands say what they did."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alblake.cli import main
from alblake.convert.core import convert_stream
from alblake.convert.privacy import PrivacySettings, keyed_address
from alblake.errors import ConfigError
from alblake.ingest.core import filter_file
from alblake.lake.compaction import CompactionOptions, compact
from alblake.lake.criteria import Matcher
from alblake.lake.generational import GenerationalLake
from alblake.lake.lifecycle import (
    ErasureRequest,
    ErasureRequestError,
    ExpiryOptions,
    criterion_for,
    erase,
    expire,
    horizon_hour,
    settle,
)
from alblake.lake.settings import (
    POLICY_KEY,
    LakePolicy,
    PolicyFormatError,
    forget_keys,
    lake_key,
    read_policy,
    set_privacy,
    update_policy,
)
from alblake.ports import ConditionFailedError
from alblake.rollup.check import rollup_check
from alblake.schema import ROLLUP_TABLE_NAME as ROLLUP
from alblake.schema import TABLE_NAME
from alblake.service.lifecycle import LifecycleConfig, LifecyclePipeline
from tests.fakes import RecordingLogger, RecordingMetrics
from tests.lake_fakes import MemoryCatalog, MemoryStore
from tests.lifecycle_helpers import column, ingest_lines, key_file, line, local_lake, object_name, rows, set_policy

NOW = datetime(2018, 7, 3, tzinfo=UTC)
VICTIM = "203.0.113.7"
OTHERS = ["203.0.113.8", "198.51.100.1", "2001:db8::1"]


@pytest.fixture(autouse=True)
def _fresh_keys() -> None:
    forget_keys()


def two_objects(lake_dir: Path) -> None:
    """Two objects over hours 21 and 22; the victim has rows in both hours and in both objects."""
    lake = local_lake(lake_dir)
    first = [line(VICTIM, hour="21"), line(OTHERS[0], hour="21", minute=1), line(VICTIM, hour="22", minute=2)]
    second = [line(OTHERS[1], hour="22", minute=3), line(VICTIM, hour="22", minute=4), line(OTHERS[2], hour="22")]
    ingest_lines(lake, [*first, f"junk {VICTIM}:2817 broken"], name=object_name("2120", "a"))
    ingest_lines(lake, second, name=object_name("2225", "b"))


def all_lake_bytes(lake_dir: Path, prefix: str = "") -> bytes:
    return b"".join(p.read_bytes() for p in sorted((lake_dir / prefix).rglob("*")) if p.is_file())


# ------------------------------------------------------------------------------------------------------ erasure


def test_a_staged_file_is_filtered_batch_by_batch_into_the_same_rows(tmp_path: Path) -> None:
    """Ingest filters a staged partition file a batch at a time (memory stays bounded for a file of any size):
    the kept rows, the schema and the Parquet settings are those of filtering the whole file at once."""
    text = "\n".join(line([VICTIM, *OTHERS][i % 4], minute=i % 60, path=f"/r{i}") for i in range(1000)) + "\n"
    staged = convert_stream(io.BytesIO(text.encode()), "big.log", tmp_path)
    path = staged.data[0].path
    original = pq.read_table(path)
    matcher, nobody = (Matcher([criterion_for(ErasureRequest(client_ip=ip), LakePolicy(), None, NOW)[0]])
                       for ip in (VICTIM, "192.0.2.99"))
    expected = original.filter(pa.array(~matcher.drop(original)))
    untouched = path.read_bytes()

    clean = filter_file(path, nobody, batch_rows=100)
    assert (clean.dropped, clean.batches) == (0, 10)  # one pass over the matcher's columns, nothing rewritten
    assert path.read_bytes() == untouched

    done = filter_file(path, matcher, batch_rows=100)
    assert (done.dropped, done.batches) == (250, 20)  # 10 batches to count, 10 to write the kept rows
    written = pq.ParquetFile(path)
    assert written.read().equals(expected)
    assert written.schema_arrow == pq.ParquetFile(io.BytesIO(untouched)).schema_arrow
    assert written.metadata.num_row_groups == 1  # the kept rows in row groups as the conversion writes them
    first = written.metadata.row_group(0)
    assert {first.column(i).compression for i in range(first.num_columns)} == {"ZSTD"}
    assert [p for p in path.parent.iterdir() if p.name.endswith(".filtered")] == []
    staged.discard()


def test_an_erasure_removes_exactly_the_clients_rows_and_lines(tmp_path: Path) -> None:
    two_objects(tmp_path / "lake")
    lake = local_lake(tmp_path / "lake")
    report = erase(lake, ErasureRequest(client_ip=VICTIM), by="dpo@example", now=NOW)
    assert column(lake, "client_ip") == sorted(OTHERS)
    assert report.rows == 3 and report.lines == 1
    assert sorted(report.partitions) == ["elb_name=my-loadbalancer/day=2018-07-02/hour=21",
                                         "elb_name=my-loadbalancer/day=2018-07-02/hour=22"]
    quarantine = all_lake_bytes(tmp_path / "lake", "quarantine").decode()
    assert VICTIM not in quarantine and '"erased": 1' in quarantine and '"quarantined": 0' in quarantine
    record = json.loads((tmp_path / "lake" / report.record).read_text())
    assert record["by"] == "dpo@example" and record["kinds"] == ["client_ip"] and record["digest"] == "sha256"
    assert (record["rows_erased"], record["quarantined_lines_erased"]) == (3, 1)
    lifecycle = all_lake_bytes(tmp_path / "lake", "lifecycle").decode()
    assert VICTIM not in lifecycle  # neither the policy nor the audit record holds the value


def test_re_ingest_never_brings_erased_rows_back_and_counts_them(tmp_path: Path) -> None:
    two_objects(tmp_path / "lake")
    lake = local_lake(tmp_path / "lake")
    erase(lake, ErasureRequest(client_ip=VICTIM), by="dpo", now=NOW)
    again = ingest_lines(lake, [line(OTHERS[1], hour="22", minute=3), line(VICTIM, hour="22", minute=4)],
                         name=object_name("2225", "b"))
    assert (again.lines, again.rows, again.quarantined, again.erased) == (2, 1, 0, 1)
    manifest = json.loads(next((tmp_path / "lake" / "manifests").glob("*2225*")).read_text())
    assert manifest["lines"] == manifest["rows"] + manifest["quarantined"] + manifest["erased"]
    assert VICTIM not in column(lake, "client_ip")
    new = ingest_lines(lake, [line(VICTIM, hour="23")], name=object_name("2330", "c"))  # a new object: same
    assert (new.rows, new.erased) == (0, 1) and VICTIM not in column(lake, "client_ip")
    # the conversion derived the rollup of the rows before the erasure dropped some: it is derived again
    assert rollup_check(lake).mismatches == 0


def test_an_erasure_through_compacted_hours_and_its_retired_folder(tmp_path: Path) -> None:
    two_objects(tmp_path / "lake")
    lake = local_lake(tmp_path / "lake")
    compact(lake, CompactionOptions(now=NOW, older_than=timedelta(0), grace=timedelta(0)))
    erase(lake, ErasureRequest(client_ip=VICTIM), by="dpo", now=NOW)
    assert column(lake, "client_ip") == sorted(OTHERS)
    data = all_lake_bytes(tmp_path / "lake", "alb_logs")
    assert VICTIM.encode() in data  # the retired folder, until compaction deletes it after the grace period
    later = datetime.now(UTC) + timedelta(hours=2)  # the lake's clock dates the retired folder
    compact(lake, CompactionOptions(now=later, older_than=timedelta(0), grace=timedelta(hours=1)))
    assert VICTIM.encode() not in all_lake_bytes(tmp_path / "lake", "alb_logs")
    assert column(lake, "client_ip") == sorted(OTHERS)


ROWS = [  # (client, line): request paths /1 .. /5
    line(VICTIM, hour="21", trace="Root=1-aaaa", path="/1"),
    line(VICTIM, hour="22", domain="shop.example.com", path="/2"),
    line(OTHERS[0], hour="22", minute=5, domain="shop.example.com", path="/3"),
    line(OTHERS[1], hour="22", minute=6, trace="Root=1-aaaa", path="/4"),
    line(VICTIM, hour="22", minute=7, path="/5"),
]
UNTIL_22 = datetime(2018, 7, 2, 22, tzinfo=UTC)


@pytest.mark.parametrize(
    ("request_", "erased"),
    [
        (ErasureRequest(trace_id="Root=1-aaaa"), ["/1", "/4"]),
        (ErasureRequest(domain="Shop.Example.com."), ["/2", "/3"]),  # domains in one spelling
        (ErasureRequest(client_ip=VICTIM, domain="shop.example.com"), ["/2"]),  # every field given must match
        (ErasureRequest(client_ip=VICTIM, end=UNTIL_22), ["/1"]),
        (ErasureRequest(client_ip=VICTIM, start=UNTIL_22), ["/2", "/5"]),
    ],
)
def test_criteria_by_trace_domain_range_and_together(
    tmp_path: Path, request_: ErasureRequest, erased: list[str]
) -> None:
    lake = local_lake(tmp_path / "lake")
    ingest_lines(lake, ROWS)
    erase(lake, request_, by="dpo", now=NOW)
    paths = sorted(str(url).split(":443", 1)[1] for url in column(lake, "request_url"))
    assert paths == sorted({"/1", "/2", "/3", "/4", "/5"} - set(erased))


def test_a_dry_run_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    two_objects(tmp_path / "lake")
    before = all_lake_bytes(tmp_path / "lake")
    assert main(["erase", "--lake", str(tmp_path / "lake"), "--client-ip", VICTIM, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would erase 3 rows in 2 partition-hour(s) and 1 quarantined lines in 1 file(s)" in out
    assert all_lake_bytes(tmp_path / "lake") == before


def test_the_command_prints_what_it_removed_and_running_it_again_reuses_the_criteria(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two_objects(tmp_path / "lake")
    lake_dir = str(tmp_path / "lake")
    assert main(["erase", "--lake", lake_dir, "--client-ip", VICTIM, "--reason", "ticket 42"]) == 0
    out = capsys.readouterr().out
    assert "erased         2 rows    elb_name=my-loadbalancer/day=2018-07-02/hour=22" in out
    assert "erased 3 rows in 2 partition-hour(s) and 1 quarantined lines in 1 file(s)" in out
    assert "audit record lifecycle/erasures/e" in out
    assert main(["erase", "--lake", lake_dir, "--client-ip", VICTIM]) == 0
    assert "erased 0 rows" in capsys.readouterr().out
    assert len(read_policy(local_lake(tmp_path / "lake").store).policy.erasures) == 1
    assert len(list((tmp_path / "lake" / "lifecycle" / "erasures").glob("*.json"))) == 2


def test_an_erasure_in_a_lake_without_a_key_warns_and_names_the_command_that_sets_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two_objects(tmp_path / "lake")
    lake_dir = str(tmp_path / "lake")
    assert main(["erase", "--lake", lake_dir, "--client-ip", VICTIM]) == 0
    err = capsys.readouterr().err
    assert "warning: this lake has no key" in err and f"alblake privacy --lake {lake_dir} --key ssm:NAME" in err
    assert VICTIM not in column(local_lake(tmp_path / "lake"), "client_ip")  # erased all the same

    set_policy(local_lake(tmp_path / "lake"), PrivacySettings(), key_file(tmp_path))
    assert main(["erase", "--lake", lake_dir, "--client-ip", OTHERS[0]]) == 0
    assert "warning" not in capsys.readouterr().err


def test_bad_requests_are_refused_with_what_to_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    two_objects(tmp_path / "lake")
    lake_dir = str(tmp_path / "lake")
    assert main(["erase", "--lake", lake_dir]) == 2
    assert "needs a client address, a trace id or a domain" in capsys.readouterr().err
    assert main(["erase", "--lake", lake_dir, "--client-ip", "203.0.113"]) == 2
    assert "is not an IPv4 or IPv6 address" in capsys.readouterr().err
    assert main(["erase", "--lake", "s3://bucket/lake", "--client-ip", VICTIM]) == 2
    assert "give --glue-database" in capsys.readouterr().err


@pytest.mark.parametrize(
    "start",
    ["2018-07-02T22:00", "2018-07-02 22:00:00", "2018-07-02T22:00Z", "2018-07-02T22:00z", "2018-07-03T00:00+02:00"],
)
def test_the_erase_window_is_read_as_the_reading_commands_read_times(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], start: str
) -> None:
    """--from and --to are read by ``alblake.scope.parse_moment``, as --since and --until are: UTC unless the time
    says otherwise, ``Z`` in either case (a lowercase ``z`` was refused before)."""
    two_objects(tmp_path / "lake")
    assert main(["erase", "--lake", str(tmp_path / "lake"), "--client-ip", VICTIM, "--from", start, "--dry-run"]) == 0
    assert "would erase 2 rows in 1 partition-hour(s)" in capsys.readouterr().out  # 22:02 and 22:04, not 21:00


@pytest.mark.parametrize(
    ("option", "value"), [("--from", "2h"), ("--from", "1.5d"), ("--to", "now"), ("--to", "2018-07")]
)
def test_the_erase_window_refuses_times_relative_to_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    """The way back after a failed erasure is the same command again, which finds its criteria by their window: a
    time relative to now (which --since takes) would name other rows then, so it is refused as a time that is not
    one (2018-07) is, saying what to write."""
    two_objects(tmp_path / "lake")
    with pytest.raises(SystemExit):
        main(["erase", "--lake", str(tmp_path / "lake"), "--client-ip", VICTIM, option, value, "--dry-run"])
    assert f"'{value}': expected YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)" in capsys.readouterr().err


def test_a_truncating_lake_erases_a_network_only_when_asked(tmp_path: Path) -> None:
    lake = local_lake(tmp_path / "lake")
    ingest_lines(lake, [line(VICTIM, hour="20")])  # before truncation: the full address
    set_policy(lake, PrivacySettings(client_ip="truncate"))
    ingest_lines(lake, [line(VICTIM, hour="21"), line("203.0.113.99", hour="21", minute=1),
                        line(OTHERS[1], hour="21", minute=2)], name="later.log")
    with pytest.raises(ErasureRequestError, match="--whole-network"):
        erase(lake, ErasureRequest(client_ip=VICTIM), by="dpo", now=NOW)
    erase(lake, ErasureRequest(client_ip=VICTIM, whole_network=True), by="dpo", now=NOW)
    assert column(lake, "client_ip") == ["198.51.100.0/24"]


def test_a_keyed_lake_erases_hashed_addresses_and_keys_its_criteria(tmp_path: Path) -> None:
    lake = local_lake(tmp_path / "lake")
    ingest_lines(lake, [line(VICTIM, hour="20")])  # before hashing: the full address
    set_policy(lake, PrivacySettings(client_ip="hmac"), key_file(tmp_path))
    ingest_lines(lake, [line(VICTIM, hour="21"), line(OTHERS[1], hour="21", minute=2)], name="later.log")
    report = erase(lake, ErasureRequest(client_ip=VICTIM), by="dpo", now=NOW)
    assert report.rows == 2
    key = lake_key(key_file(tmp_path))
    assert column(lake, "client_ip") == [keyed_address(key, OTHERS[1])]
    assert read_policy(lake.store).policy.erasures[0].digest == "hmac-sha256"


def test_an_erasure_that_died_after_its_criteria_is_finished_by_a_settle_pass(tmp_path: Path) -> None:
    two_objects(tmp_path / "lake")
    lake = local_lake(tmp_path / "lake")

    class Died(BaseException):
        pass

    def die(*args: object, **kwargs: object) -> None:
        raise Died

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("alblake.lake.lifecycle.Eraser.partitions", die)
        with pytest.raises(Died):
            erase(lake, ErasureRequest(client_ip=VICTIM), by="dpo", now=NOW)
    assert VICTIM in column(lake, "client_ip")  # the criteria are written, the rows not yet erased
    assert settle(lake, now=NOW + timedelta(minutes=30)) == []  # not a grace period old yet
    (report,) = settle(lake, now=NOW + timedelta(hours=2))
    assert report.rows == 3 and VICTIM not in column(lake, "client_ip")
    assert json.loads((tmp_path / "lake" / report.record).read_text())["by"] == "settle"


def erasure_that_died_after_its_criteria(lake: GenerationalLake) -> None:
    """An erasure whose criteria are in the policy, without an audit record and with no row erased yet."""

    class Died(BaseException):
        pass

    def die(*args: object, **kwargs: object) -> None:
        raise Died

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("alblake.lake.lifecycle.Eraser.partitions", die)
        with pytest.raises(Died):
            erase(lake, ErasureRequest(client_ip=VICTIM), by="dpo", now=NOW)


def test_a_settle_pass_out_of_time_stops_between_partitions_and_the_next_goes_on(tmp_path: Path) -> None:
    """A settle pass asked to stop before its second partition leaves the erasure unsettled, its record holding
    the partition it rescanned; the next pass rescans only the other one and settles it."""
    two_objects(tmp_path / "lake")
    lake = local_lake(tmp_path / "lake")
    erasure_that_died_after_its_criteria(lake)
    answers = iter([False, False, True])  # asked before the erasure, its first partition, its second
    (stopped,) = settle(lake, now=NOW + timedelta(hours=2), should_stop=lambda: next(answers))
    assert stopped.stopped_early and stopped.rows == 1  # the victim's row of hour 21
    assert sorted(p.rsplit("/", 1)[-1] for p in stopped.scanned) == ["hour=21"]
    assert column(lake, "client_ip").count(VICTIM) == 2  # its rows of hour 22: not yet
    record = json.loads((tmp_path / "lake" / stopped.record).read_text())
    assert record["settled_at"] is None and list(record["scanned"]) == list(stopped.scanned)

    (resumed,) = settle(lake, now=NOW + timedelta(hours=3))
    assert not resumed.stopped_early and resumed.rows == 2
    assert sorted(p.rsplit("/", 1)[-1] for p in resumed.scanned) == ["hour=22"]  # hour 21 not rescanned
    assert VICTIM not in column(lake, "client_ip")
    record = json.loads((tmp_path / "lake" / stopped.record).read_text())
    assert record["settled_at"] is not None and record["rows_erased"] + record["settle_rows_erased"] == 3
    assert settle(lake, now=NOW + timedelta(hours=4)) == []


def test_the_scheduled_run_settles_within_the_functions_time(tmp_path: Path) -> None:
    """The lifecycle function's settling stops when less than a minute is left, as its expiry does; the next run
    settles the rest."""
    two_objects(tmp_path / "lake")
    lake = local_lake(tmp_path / "lake")
    erasure_that_died_after_its_criteria(lake)
    pipeline = LifecyclePipeline(
        config=LifecycleConfig(lake_bucket="lake", glue_database="db", retention_days=0.1),  # hours 21, 22 go
        lake=lake, catalog=None, logger=RecordingLogger(), metrics=RecordingMetrics(),
        clock=lambda: NOW + timedelta(hours=2),
    )
    remaining = iter([120_000, 120_000, 30_000])  # milliseconds: enough for the erasure and a partition
    first = pipeline.run(lambda: next(remaining, 30_000))
    assert first["settling_stopped_early"] and first["erasures_settled"] == 0
    assert first["stopped_early"] and first["partitions_emptied"] == 0  # expiry out of time too: nothing emptied
    assert VICTIM in column(lake, "client_ip")
    second = pipeline.run(lambda: 120_000)
    assert not second["settling_stopped_early"] and second["erasures_settled"] == 1
    assert second["rows_erased_when_settling"] == 2 and second["partitions_emptied"] == 2


# ------------------------------------------------------------------------------------------------------- expiry


def test_expiry_empties_old_hours_then_drops_them_after_the_grace_period(tmp_path: Path) -> None:
    two_objects(tmp_path / "lake")
    lake_dir = tmp_path / "lake"
    lake = local_lake(lake_dir)
    ingest_lines(lake, [line(OTHERS[0], hour="21", minute=30), "junk"], name=object_name("2135", "c"))
    catalog = MemoryCatalog()
    lake.registrar = catalog
    lake._point(sorted({p for _, p in lake.visible_keys()}))
    catalog.others[ROLLUP] = dict(catalog.locations)  # the rollup, derived from the data files: same partitions
    assert [p for p in lake_dir.rglob("*") if ROLLUP in str(p) and "hour=21" in str(p)]  # its files of hour 21
    now = datetime(2018, 7, 2, 23, 30, tzinfo=UTC)
    options = ExpiryOptions(now=now, older_than=timedelta(hours=2))  # the lake's own derived tables
    assert horizon_hour(now, options.older_than or timedelta(0)) == "2018-07-02T21"  # hour 21 ended at 22:00
    options.older_than = timedelta(hours=1, minutes=30)  # 22:00: hour 21 goes, hour 22 stays
    first = expire(lake, options, catalog)
    assert first.expired_before == "2018-07-02T22" and len(first.emptied) == 1 and not first.dropped
    assert all(t.hour == 22 for t in rows(lake).column("time").to_pylist())
    assert [p.hour for p in catalog.locations] == ["21", "22"]  # emptied: its Location names an empty folder
    assert [p.hour for p in catalog.others[ROLLUP]] == ["22"]
    options.now = now + timedelta(minutes=90)
    options.older_than = timedelta(hours=3)  # a later run, a shorter horizon: the lake's horizon never goes back
    second = expire(lake, options, catalog)
    assert second.expired_before == "2018-07-02T22" and len(second.dropped) == 1
    assert [p.hour for p in catalog.locations] == ["22"]
    assert not [p for p in lake_dir.rglob("*") if "hour=21" in str(p)]
    manifests = {p.name: json.loads(p.read_text()) for p in (lake_dir / "manifests").glob("*.json")}
    assert len(manifests) == 2  # the object whose rows were all in hour 21 is gone, with its quarantine file
    assert all(m["partitions"] == ["elb_name=my-loadbalancer/day=2018-07-02/hour=22"] for m in manifests.values())
    assert all("hour=21" not in f for m in manifests.values() for f in m["files"])
    assert len(list((lake_dir / "quarantine").glob("*"))) == 1
    late = ingest_lines(lake, [line(VICTIM, hour="21", minute=59), line(VICTIM, hour="22", minute=59)], name="x.log")
    assert (late.rows, late.erased) == (1, 1)  # an expired hour never comes back
    assert not [p for p in lake_dir.rglob("*") if "hour=21" in str(p)]


def test_quarantine_files_have_their_own_horizon(tmp_path: Path) -> None:
    two_objects(tmp_path / "lake")
    lake = local_lake(tmp_path / "lake")
    options = ExpiryOptions(now=datetime(2018, 7, 2, 23, 0, tzinfo=UTC), quarantine_older_than=timedelta(hours=1))
    report = expire(lake, options)
    assert len(report.quarantine_deleted) == 1 and report.expired_before is None  # the object ending 21:20
    assert len(rows(lake)) == 6  # no row expired


def test_expiry_drops_the_erasure_criteria_whose_range_ended_before_its_horizon(tmp_path: Path) -> None:
    """Criteria that can only match rows of expired hours leave the policy (every ingest tests its rows against
    every criterion), their audit records stay, and a re-ingest of an old object still brings nothing back."""
    two_objects(tmp_path / "lake")
    lake = local_lake(tmp_path / "lake")
    at = datetime(2018, 7, 2, tzinfo=UTC)
    outlived = erase(lake, ErasureRequest(client_ip=VICTIM, start=at, end=at.replace(hour=22)), by="dpo", now=NOW)
    later = erase(lake, ErasureRequest(client_ip=VICTIM, start=at.replace(hour=22), end=at + timedelta(days=2)),
                  by="dpo", now=NOW)
    open_ended = erase(lake, ErasureRequest(client_ip=OTHERS[1]), by="dpo", now=NOW)
    assert (outlived.rows, later.rows, open_ended.rows) == (1, 2, 1)

    report = expire(lake, ExpiryOptions(now=NOW, older_than=timedelta(hours=1)))  # hours before 23:00 go
    assert report.expired_before == "2018-07-02T23" and report.criteria_pruned == [outlived.id]
    policy = read_policy(lake.store).policy
    assert sorted(c.id for c in policy.erasures) == sorted([later.id, open_ended.id])
    assert len(list((tmp_path / "lake" / "lifecycle" / "erasures").iterdir())) == 3  # the audit records stay
    again = expire(lake, ExpiryOptions(now=NOW, older_than=timedelta(hours=1)))
    assert again.criteria_pruned == []

    first = [line(VICTIM, hour="21"), line(OTHERS[0], hour="21", minute=1), line(VICTIM, hour="22", minute=2)]
    redelivered = ingest_lines(lake, first, name=object_name("2120", "a"))
    assert (redelivered.rows, redelivered.erased) == (0, 3)  # its hours are expired: nothing comes back
    assert rows(lake).num_rows == 0


def test_the_expire_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    two_objects(tmp_path / "lake")
    lake_dir = str(tmp_path / "lake")
    assert main(["expire", "--lake", lake_dir]) == 2
    assert "give --older-than" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["expire", "--lake", lake_dir, "--older-than", "forever"])
    assert "expected a number of days or hours, like 400d" in capsys.readouterr().err
    assert main(["expire", "--lake", lake_dir, "--older-than", "1d", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "emptied               2 partition-hour(s) would be emptied" in out and "dry run" in out
    assert main(["expire", "--lake", lake_dir, "--older-than", "1d", "--quarantine-older-than", "1h"]) == 0
    assert "emptied               2 partition-hour(s) emptied" in capsys.readouterr().out
    later = datetime.now(UTC) + timedelta(minutes=17)
    monkeypatch.setattr("alblake.cli.lifecycle._now", lambda: later)  # a grace period of 16 minutes later
    assert main(["expire", "--lake", lake_dir, "--older-than", "1d", "--grace", "16"]) == 0
    assert "dropped               2 partition-hour(s) dropped" in capsys.readouterr().out
    assert not list((tmp_path / "lake").rglob("*.parquet"))


@pytest.mark.parametrize("age", ["30m", "45s", "2w", "1D", "400", "forever", "9999999999d"])
def test_expiry_ages_are_days_or_hours(tmp_path: Path, capsys: pytest.CaptureFixture[str], age: str) -> None:
    """--older-than and --quarantine-older-than are read by ``alblake.scope.parse_age`` (as --since 2h is), in days
    or hours only: the stack's retention is in days, expiry works on whole partition-hours."""
    two_objects(tmp_path / "lake")
    lake_dir = str(tmp_path / "lake")
    for option in ("--older-than", "--quarantine-older-than"):
        with pytest.raises(SystemExit):
            main(["expire", "--lake", lake_dir, option, age, "--dry-run"])
        assert f"'{age}': expected a number of days or hours, like 400d or 36h" in capsys.readouterr().err
    assert main(["expire", "--lake", lake_dir, "--older-than", " 0.5 d", "--quarantine-older-than", "36h"]) == 0


def test_expiry_ages_that_reach_before_the_year_1000_or_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An age whose horizon is before the year 1 is refused with a line (it was an OverflowError, a traceback); one
    whose horizon is before the year 1000 works (its hour was written with a 3-digit year, which did not read back)."""
    two_objects(tmp_path / "lake")
    lake_dir = str(tmp_path / "lake")
    with pytest.raises(SystemExit):
        main(["expire", "--lake", lake_dir, "--older-than", "999999d", "--dry-run"])
    assert "'999999d': reaches back before the year 1" in capsys.readouterr().err
    assert horizon_hour(datetime(2026, 1, 1, tzinfo=UTC), timedelta(days=700_000)) == "0109-06-20T00"
    assert main(["expire", "--lake", lake_dir, "--older-than", "700000d", "--dry-run"]) == 0
    assert "dry run: nothing changed" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["expire", "--older-than", "1d"], ["erase", "--client-ip", VICTIM]])
@pytest.mark.parametrize("grace", ["0", "15.9"])
def test_the_commands_refuse_a_grace_period_shorter_than_any_ingest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], grace: str
) -> None:
    """Nothing comes back only if every ingest that read the policy before a change has finished a grace period
    later: the commands refuse a shorter one (the stack's floor, 16 minutes), naming the value allowed."""
    two_objects(tmp_path / "lake")
    with pytest.raises(SystemExit) as exited:
        main([*command, "--lake", str(tmp_path / "lake"), "--grace", grace])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "the grace period must be at least 16 minutes" in err and "give --grace 16 or more" in err
    assert VICTIM in column(local_lake(tmp_path / "lake"), "client_ip")  # nothing was done


# ------------------------------------------------------------------------------------------------------- policy


def test_privacy_command_shows_and_sets_and_refuses_a_key_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two_objects(tmp_path / "lake")
    lake_dir = str(tmp_path / "lake")
    assert main(["privacy", "--lake", lake_dir, "--client-ip", "hmac"]) == 1
    assert "needs the lake's key" in capsys.readouterr().err
    key = key_file(tmp_path)
    assert main(["privacy", "--lake", lake_dir, "--client-ip", "hmac", "--key", key]) == 0
    assert "client_ip         hmac" in capsys.readouterr().out
    other = tmp_path / "other"
    other.mkdir()
    assert main(["privacy", "--lake", lake_dir, "--key", key_file(other, b"another key of thirty-two bytes!")]) == 1
    assert "another key could not match them" in capsys.readouterr().err
    assert main(["privacy", "--lake", lake_dir]) == 0
    assert "fingerprint" in capsys.readouterr().out
    policy = (tmp_path / "lake" / POLICY_KEY).read_bytes()
    assert b"0123456789abcdef" not in policy and key.encode() in policy  # the reference, never the key


def test_a_replaced_key_stops_the_ingest(tmp_path: Path) -> None:
    lake = local_lake(tmp_path / "lake")
    key = key_file(tmp_path)
    set_privacy(lake.store, {"client_ip": "hmac"}, key)
    Path(key.removeprefix("file:")).write_bytes(b"a different key of thirty-two b!")
    forget_keys()
    with pytest.raises(ConfigError, match="is not the key this lake was set up with"):
        ingest_lines(lake, [line(VICTIM)])
    assert not (tmp_path / "lake" / "alb_logs").exists()


def test_an_unreadable_policy_stops_the_ingest(tmp_path: Path) -> None:
    lake = local_lake(tmp_path / "lake")
    (tmp_path / "lake" / "lifecycle").mkdir(parents=True)
    (tmp_path / "lake" / POLICY_KEY).write_text("{not json")
    with pytest.raises(PolicyFormatError, match="nothing is ingested until it is fixed"):
        ingest_lines(lake, [line(VICTIM)])


def test_key_sources(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="this process reads keys from"):
        lake_key("vault:secret/x")
    short = tmp_path / "short"
    short.write_bytes(b"short")
    with pytest.raises(ConfigError, match="shorter than 16 bytes"):
        lake_key(f"file:{short}")
    with pytest.raises(ConfigError, match="cannot be read"):
        lake_key(f"file:{tmp_path / 'missing'}")


def test_a_policy_write_whose_answer_is_lost_is_known_as_its_own() -> None:
    store = MemoryStore()
    written: list[str] = []

    def lose(operation: str, key: str) -> None:
        if operation == "put_bytes_if" and not written:
            written.append(key)
            raise ConditionFailedError(key)  # the SDK's retry of a write that succeeded

    store.after_write = lose

    def expire_hour_10(policy: LakePolicy) -> bool:
        policy.expired_before = "2018-07-02T10"
        return True

    policy = update_policy(store, expire_hour_10)
    assert written == [POLICY_KEY] and policy.revision == 1
    assert read_policy(store).policy.expired_before == "2018-07-02T10"


def test_the_curated_table_name_is_the_catalogs() -> None:
    catalog = MemoryCatalog()
    assert catalog.drop(TABLE_NAME, []) == 0
