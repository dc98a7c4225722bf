"""Retention and erasure of a ``GenerationalLake``, through the lake's own commit protocol (pure core).

- ``erase``: rows matching an erasure request (a client address, a trace id, a domain; optionally a time range)
  leave every partition-hour that holds them by a rewrite (``GenerationalLake._rewrite`` with a row filter: a
  generation swap, then the Location), and the quarantined lines that match leave their quarantine files. The
  criteria are first added to the lake's policy (``alblake.lake.settings``), so every later ingest drops such rows;
  an audit record under ``lifecycle/erasures/`` says who, when, what kind of criteria and how much, never the
  values. ``settle`` rescans, at least a grace period later, the partitions that changed since an erasure scanned
  them (an ingest that died between its commit and its second look at the policy).
- ``expire``: whole partition-hours before a horizon are emptied (a swap to an empty generation, then the
  Location), and a grace period later dropped (folders, catalog partitions of the curated and derived tables,
  their objects' manifests, state, markers); quarantine files go at their own horizon.

Steps, who sees what at each, and why nothing comes back: docs/COMPACTION.md, "Retention and erasure".
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from alblake.convert.privacy import keyed_address, network_of
from alblake.errors import InputError
from alblake.keys import AccessLogKey, classify_key
from alblake.lake.criteria import Matcher, filter_quarantine, hour_start, parse_time
from alblake.lake.generational import GenerationalLake, LakeConflictError, is_per_object_file, owning_folder
from alblake.lake.generations import (
    COMPACTED_PREFIX,
    STATE_PREFIX,
    PartitionState,
    RetiredFolder,
    generation_folder,
    lineage_key,
    now_iso,
    parse_iso,
    partition_of_path,
    pending_key,
    state_key,
)
from alblake.lake.layout import (
    DATA_PREFIX,
    MANIFEST_PREFIX,
    QUARANTINE_PREFIX,
    Partition,
    manifest_key,
    partition_location,
    quarantine_key,
)
from alblake.lake.settings import (
    ERASURES_PREFIX,
    EXPIRED_PREFIX,
    KEYED,
    PLAIN,
    Criterion,
    LakePolicy,
    normal_value,
    policy_key,
    read_policy,
    update_policy,
    value_digest,
)
from alblake.ports import ConditionFailedError, DerivedTable
from alblake.schema import TABLE_NAME

DEFAULT_GRACE = timedelta(minutes=60)
COUNT_BATCH_ROWS = 128 * 1024  # rows of a live file an erasure's scan reads at a time
_ALB_END_TIME = re.compile(r"_(\d{8}T\d{4}Z)_")


class ErasureRequestError(InputError, ValueError):
    """An erasure request that cannot be run as given (the message says what to change)."""


class PartitionCatalog(Protocol):
    """The catalog partitions expiry drops (Glue: ``alblake.aws.glue_partitions.GluePartitionCatalog``)."""

    def drop(self, table: str, partitions: Sequence[Partition]) -> int:
        """Drop these partitions of ``table`` (those that do not exist count as dropped); how many existed."""
        ...

    def partitions_before(self, table: str, day: str) -> list[Partition]:
        """The partitions of ``table`` whose day (YYYY-MM-DD) is before ``day``."""
        ...


# ------------------------------------------------------------------------------------------------ partitions


def lake_partitions(lake: GenerationalLake) -> set[Partition]:
    """Every partition the lake knows: those with a state, with generation-0 files, with an expiry marker, or with
    files of a derived table only (a writer whose data file never followed its sibling: the rollup's file of an
    ingest that gave up, which Athena's rollup table reads until its hour is dropped)."""
    found: set[Partition] = set()
    for key in lake.store.list_keys(STATE_PREFIX):
        partition = partition_of_path(key[len(STATE_PREFIX) :].removesuffix(".json"))
        if partition is not None:
            found.add(partition)
    for prefix in (DATA_PREFIX, *(table.prefix for table in lake.derived)):  # a derived tree mirrors the data tree
        for key in lake.store.list_keys(f"{prefix}elb_name="):
            folder = owning_folder(DATA_PREFIX + key[len(prefix) :])
            if folder is not None:
                found.add(folder[0])
    for key in lake.store.list_keys(EXPIRED_PREFIX):
        partition = partition_of_path(key[len(EXPIRED_PREFIX) :])
        if partition is not None:
            found.add(partition)
    return found


def partition_start(partition: Partition) -> datetime:
    return datetime.fromisoformat(f"{partition.day}T{partition.hour}:00:00+00:00")


def _parquet_keys(lake: GenerationalLake, folder: str) -> list[str]:
    return [key for key in lake.store.list_keys(folder) if key.endswith(".parquet") and "/" not in key[len(folder) :]]


# --------------------------------------------------------------------------------------------------- erasure


@dataclass(frozen=True)
class ErasureRequest:
    """What to erase: rows whose every given field equals the given value, within [start, end) if given."""

    client_ip: str | None = None
    trace_id: str | None = None
    domain: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    whole_network: bool = False  # in a lake that truncates addresses: the address's whole /24 (/48)

    def __post_init__(self) -> None:
        if not (self.client_ip or self.trace_id or self.domain):
            raise ErasureRequestError("an erasure needs a client address, a trace id or a domain (or several)")
        if self.client_ip is not None and network_of(self.client_ip) is None:
            raise ErasureRequestError(f"{self.client_ip!r} is not an IPv4 or IPv6 address")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ErasureRequestError("the start of the range must come before its end")

    def kinds(self) -> list[str]:
        return [name for name, value in self._values() if value]

    def _values(self) -> list[tuple[str, str | None]]:
        return [("client_ip", self.client_ip), ("trace_id", self.trace_id), ("domain_name", self.domain)]


def criterion_for(
    request: ErasureRequest, policy: LakePolicy, key: bytes | None, now: datetime
) -> tuple[Criterion, str]:
    """The criterion of a request as the lake stores it (per field, the digests of every form the lake may hold
    the value in), and a digest of the whole request, from which the criterion's id is taken (the same request
    gives the same id, so running an erasure again reuses its criteria)."""
    kind = KEYED if key is not None else PLAIN
    fields: dict[str, list[str]] = {}
    for name, value in request._values():
        if not value:
            continue
        forms = {normal_value(name, value)}
        if name == "client_ip":
            if policy.privacy.client_ip == "truncate" and not request.whole_network:
                raise ErasureRequestError(
                    "this lake stores client addresses truncated to their /24 (IPv6: /48): a single address cannot "
                    "be told apart from its neighbours. Add --whole-network to erase every row of its network"
                )
            if key is not None:
                forms.add(keyed_address(key, value))
            if request.whole_network:
                forms.add(str(network_of(value)))
        fields[name] = sorted(value_digest(kind, key, name, form) for form in forms)
    start = None if request.start is None else request.start.astimezone(UTC).isoformat()
    end = None if request.end is None else request.end.astimezone(UTC).isoformat()
    whole = json.dumps({"fields": fields, "start": start, "end": end}, sort_keys=True)
    identity = value_digest(kind, key, "criteria", whole)
    return Criterion(f"e{identity[:16]}", now_iso(now), kind, fields, start, end), identity


@dataclass
class ErasureReport:
    """What an erasure (or its dry run, or a settle pass) found and removed."""

    id: str
    dry_run: bool = False
    reused: bool = False  # the lake had these criteria already (an erasure run again)
    partitions: dict[str, int] = field(default_factory=dict)  # partition path -> rows removed (dry run: matching)
    quarantine: dict[str, int] = field(default_factory=dict)  # quarantine key -> lines removed (dry run: matching)
    scanned: dict[str, str] = field(default_factory=dict)  # partition path -> the state version it was left at
    errors: list[tuple[str, str]] = field(default_factory=list)  # (partition path or key, message)
    conflicts: int = 0
    record: str = ""  # the audit record's key
    stopped_early: bool = False  # a settle pass out of time: the rest of its partitions are left to the next one

    @property
    def rows(self) -> int:
        return sum(self.partitions.values())

    @property
    def lines(self) -> int:
        return sum(self.quarantine.values())


class _FolderChanged(Exception):  # noqa: N818 - control flow inside this module: the live folder changed
    """A live file disappeared while it was scanned (a newer generation replaced the folder)."""


class Eraser:
    """One erasure criterion applied to a lake: partition by partition, then its quarantine files."""

    def __init__(
        self,
        lake: GenerationalLake,
        matcher: Matcher,
        report: ErasureReport,
        *,
        dry_run: bool,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.lake = lake
        self.matcher = matcher
        self.report = report
        self.dry_run = dry_run
        self.should_stop = should_stop  # asked before each partition (a settle pass within a function's time)

    def partitions(self, partitions: Iterable[Partition]) -> None:
        done = []
        for partition in partitions:
            if self.should_stop():
                self.report.stopped_early = True
                break
            try:
                self.partition(partition)
                done.append(partition)
            except Exception as error:  # an error stays with its partition; it is rescanned when settling
                self.report.errors.append((partition.path, f"{type(error).__name__}: {error}"))
                self.report.scanned[partition.path] = ""
        if not self.dry_run:  # also those found clean: a run that died between a swap and its Location move
            self.lake._point(done)

    def partition(self, partition: Partition) -> None:
        """X2: seal, scan the live folder, rewrite without the matching rows; record the version left."""
        lake = self.lake
        for _ in range(lake.attempts):
            live = lake.read_state(partition)
            if live.tag is None and not self.dry_run:
                lake._swap(live, PartitionState(partition))  # seal (If-None-Match); whoever sealed it, read again
                continue
            try:
                matching = self._count(live.state.live)
            except _FolderChanged:
                continue
            if self.dry_run or not matching:
                if matching:
                    self.report.partitions[partition.path] = matching
                elif live.state.retired and not self.dry_run:  # a run that died before its pending marker
                    lake._mark_pending(partition)
                self.report.scanned[partition.path] = live.tag or ""
                return
            self.matcher.dropped = 0
            done = lake._rewrite(partition, {}, expected=live, compacting=False, row_filter=self.matcher.keep)
            if done is None:
                self.report.conflicts += 1
                continue
            self.report.partitions[partition.path] = self.matcher.dropped
            after = lake.read_state(partition)
            ours = after.state.write_token == done.state.write_token
            self.report.scanned[partition.path] = (after.tag or "") if ours else ""  # changed since: rescan
            return
        raise LakeConflictError(f"{partition.path}: gave up after {lake.attempts} conflicting writes")

    def _count(self, folder: str) -> int:
        """Rows of the folder's data files that match."""
        matching = 0
        with tempfile.TemporaryDirectory(dir=self.lake.store.staging_dir(), prefix="erase-") as work:
            for key in _parquet_keys(self.lake, folder):
                local = Path(work) / "in.parquet"
                try:
                    self.lake.store.download(key, local)
                except FileNotFoundError:
                    raise _FolderChanged(key) from None
                matching += _matching_rows(local, self.matcher)
                local.unlink()
        return matching

    def quarantine_files(self, criterion: Criterion) -> None:
        """X3: every quarantine file of an object that may have lines in the criterion's range (by the time in its
        ALB name, within an hour; any other object's), without its matching lines (compare-and-swap on the file)."""
        store = self.lake.store
        start, end = parse_time(criterion.start), parse_time(criterion.end)
        for key in store.list_keys(QUARANTINE_PREFIX):
            named = _name_time(key[len(QUARANTINE_PREFIX) :])
            if named is not None and (
                (start is not None and named + timedelta(hours=1) < start)
                or (end is not None and named - timedelta(hours=1) >= end)
            ):
                continue
            for _ in range(self.lake.attempts):
                current = store.get_versioned(key)
                if current is None:
                    break
                filtered = filter_quarantine(current.content, self.matcher)
                if filtered.lines and not self.dry_run:
                    try:
                        store.put_bytes_if(key, filtered.content, current.tag)
                    except ConditionFailedError:
                        written = store.get_versioned(key)
                        if written is None or written.content != filtered.content:
                            continue  # rewritten meanwhile (its object ingested again): filter the new one
                if filtered.lines:
                    self.report.quarantine[key] = filtered.lines
                break


def _matching_rows(path: Path, matcher: Matcher) -> int:
    """Rows of a local data file that the matcher drops, reading only its columns, a batch at a time (memory stays
    bounded for a compacted file of any size; the rewrite that drops them reads batch by batch too)."""
    matching = 0
    with pq.ParquetFile(path) as data:
        columns = [c for c in matcher.columns() if c in data.schema_arrow.names]
        for batch in data.iter_batches(batch_size=COUNT_BATCH_ROWS, columns=columns, use_threads=False):
            matching += int(np.count_nonzero(matcher.drop(pa.Table.from_batches([batch]))))
    return matching


def erase(
    lake: GenerationalLake,
    request: ErasureRequest,
    *,
    by: str,
    now: datetime,
    dry_run: bool = False,
    reason: str | None = None,
) -> ErasureReport:
    """Erase the rows and quarantined lines matching ``request`` (X1-X4 of docs/COMPACTION.md)."""
    policy = read_policy(lake.store).policy
    key = policy_key(policy)
    criterion, identity = criterion_for(request, policy, key, now)
    existing = next((c for c in policy.erasures if c.id == criterion.id), None)
    report = ErasureReport(criterion.id, dry_run=dry_run, reused=existing is not None)
    if existing is None and not dry_run:
        policy = update_policy(lake.store, lambda current: _add_criterion(current, criterion))  # X1
    chosen = existing or criterion
    eraser = Eraser(lake, Matcher([chosen], key), report, dry_run=dry_run)
    eraser.partitions(_in_scope(lake, chosen))
    eraser.quarantine_files(chosen)
    if not dry_run:
        extra = {"by": by, "reason": reason, "whole_network": request.whole_network, "criteria_digest": identity}
        report.record = _write_record(lake, report, chosen, now, extra)
    return report


def _add_criterion(policy: LakePolicy, criterion: Criterion) -> bool:
    if any(c.id == criterion.id for c in policy.erasures):
        return False
    if criterion.digest == PLAIN and policy.key is not None:  # a key was set since this one was computed
        raise ErasureRequestError("the lake's key changed while the erasure started; run it again")
    policy.erasures.append(criterion)
    return True


def _in_scope(lake: GenerationalLake, criterion: Criterion) -> list[Partition]:
    """The partitions the lake knows whose hour overlaps the criterion's range, in order. Those before the lake's
    horizon are in too: an expiry that has not emptied them yet (it stopped early, or runs now) leaves their rows
    visible until it does."""
    start, end = parse_time(criterion.start), parse_time(criterion.end)
    chosen = []
    for partition in sorted(lake_partitions(lake)):
        begins = partition_start(partition)
        if (start is not None and begins + timedelta(hours=1) <= start) or (end is not None and begins >= end):
            continue
        chosen.append(partition)
    return chosen


def _write_record(
    lake: GenerationalLake, report: ErasureReport, criterion: Criterion, now: datetime, extra: dict[str, Any]
) -> str:
    """X4: the audit record (never the values: their kinds and a digest of the whole criteria)."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    key = f"{ERASURES_PREFIX}{criterion.id}-{stamp}-{secrets.token_hex(2)}.json"
    body = {
        "id": criterion.id,
        "at": now_iso(now),
        "kinds": sorted(criterion.fields),
        "digest": criterion.digest,
        "start": criterion.start,
        "end": criterion.end,
        "reused_criteria": report.reused,
        "rows_erased": report.rows,
        "quarantined_lines_erased": report.lines,
        "partitions_rewritten": sorted(report.partitions),
        "quarantine_files_rewritten": sorted(report.quarantine),
        "errors": [{"where": where, "error": message} for where, message in report.errors],
        "scanned": report.scanned,
        "settled_at": None,
        **extra,
    }
    lake.store.put_bytes(key, (json.dumps(body, sort_keys=True, indent=1) + "\n").encode())
    return key


def settle(
    lake: GenerationalLake,
    *,
    now: datetime,
    grace: timedelta = DEFAULT_GRACE,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[ErasureReport]:
    """X5: for every erasure not settled and at least ``grace`` old, rescan the partitions of its range that
    changed since it scanned them (or appeared since), and its quarantine files; then mark it settled. Criteria
    without any audit record (an erasure that died between writing them and its record) get a whole pass.

    ``should_stop`` is asked before each erasure and each partition (the lifecycle function's remaining time). A
    pass that stops leaves the erasure it was in unsettled, its record holding the state versions of the partitions
    rescanned so far (those not reached keep the versions they had): the next pass goes on from there, rescanning
    only what changed since (a report with ``stopped_early``). Erasures not reached are untouched."""
    reports: list[ErasureReport] = []
    policy = read_policy(lake.store).policy
    recorded: set[str] = set()
    for key in list(lake.store.list_keys(ERASURES_PREFIX)):
        current = lake.store.get_versioned(key)
        if current is None:
            continue
        body = json.loads(current.content)
        recorded.add(str(body["id"]))
        criterion = next((c for c in policy.erasures if c.id == body["id"]), None)
        written = parse_iso(criterion.at if criterion is not None else str(body["at"]))  # a record of a pass that
        if body.get("settled_at") or now - written < grace:  # stopped is younger than its criteria
            continue
        if should_stop():
            return _stopped(reports, str(body["id"]))
        report = _settle_recorded(lake, policy, body, key, now, should_stop)
        with contextlib.suppress(ConditionFailedError):  # another settle pass wrote it: it did the same
            lake.store.put_bytes_if(key, (json.dumps(body, sort_keys=True, indent=1) + "\n").encode(), current.tag)
        reports.append(report)
        if report.stopped_early:
            return reports
    for criterion in policy.erasures:
        if criterion.id in recorded or now - parse_iso(criterion.at) < grace:
            continue
        if should_stop():
            return _stopped(reports, criterion.id)
        report = ErasureReport(criterion.id)
        eraser = Eraser(lake, Matcher([criterion], policy_key(policy)), report, dry_run=False, should_stop=should_stop)
        eraser.partitions(_in_scope(lake, criterion))
        if not report.stopped_early:
            eraser.quarantine_files(criterion)
        settled = None if report.errors or report.stopped_early else now_iso(now)
        report.record = _write_record(lake, report, criterion, now, {"by": "settle", "settled_at": settled})
        reports.append(report)
        if report.stopped_early:
            return reports
    return reports


def _stopped(reports: list[ErasureReport], erasure_id: str) -> list[ErasureReport]:
    """The reports of a settle pass out of time before the erasure ``erasure_id`` (left to the next pass)."""
    reports.append(ErasureReport(erasure_id, stopped_early=True))
    return reports


def _settle_recorded(
    lake: GenerationalLake,
    policy: LakePolicy,
    body: dict[str, Any],
    key: str,
    now: datetime,
    should_stop: Callable[[], bool],
) -> ErasureReport:
    """Settle the erasure of an audit record (``body``, updated in place for the caller to write back)."""
    criterion = next((c for c in policy.erasures if c.id == body["id"]), None)
    report = ErasureReport(str(body["id"]), record=key)
    if criterion is not None:
        eraser = Eraser(lake, Matcher([criterion], policy_key(policy)), report, dry_run=False, should_stop=should_stop)
        scanned: dict[str, str] = body.get("scanned", {})
        changed = [p for p in _in_scope(lake, criterion) if _changed(lake, p, scanned)]
        eraser.partitions(changed)
        if not report.stopped_early:
            eraser.quarantine_files(criterion)
    unfinished = bool(report.errors) or report.stopped_early  # not settled: the next pass goes on
    body.update(
        settled_at=None if unfinished else now_iso(now),
        settle_rows_erased=int(body.get("settle_rows_erased") or 0) + report.rows,  # over the passes it took
        settle_quarantined_lines_erased=int(body.get("settle_quarantined_lines_erased") or 0) + report.lines,
        settle_errors=[{"where": w, "error": m} for w, m in report.errors],
        scanned={**body.get("scanned", {}), **report.scanned} if unfinished else {},
    )
    return report


def _changed(lake: GenerationalLake, partition: Partition, scanned: dict[str, str]) -> bool:
    """Whether a partition may hold rows the erasure has not seen: not scanned (new, or its scan failed), its
    state changed since, or its live folder holds per-object files (the only files a commit that died before its
    state write can have added or replaced: compacted files go live only by a swap)."""
    recorded = scanned.get(partition.path)
    live = lake.read_state(partition)
    if not recorded or live.tag != recorded:
        return True
    return any(is_per_object_file(key.rsplit("/", 1)[-1]) for key in _parquet_keys(lake, live.state.live))


# ---------------------------------------------------------------------------------------------------- expiry


@dataclass
class ExpiryOptions:
    now: datetime
    older_than: timedelta | None = None  # hours that ended at least this long ago are expired (None: none)
    quarantine_older_than: timedelta | None = None  # quarantine files of objects older than this (None: none)
    grace: timedelta = DEFAULT_GRACE
    dry_run: bool = False
    should_stop: Callable[[], bool] = lambda: False
    table: str = TABLE_NAME  # the curated table's name in the catalog
    # Tables derived from the curated rows (``alblake.lake.derived``: the rollup), whose files mirror the data tree
    # under their own prefix; expiry drops their partitions and files with the curated ones. None: the lake's own.
    derived: Sequence[DerivedTable] | None = None


@dataclass
class ExpiryReport:
    expired_before: str | None = None  # the lake's horizon after this run ("YYYY-MM-DDTHH")
    emptied: list[str] = field(default_factory=list)  # partitions swapped to an empty generation (R2)
    dropped: list[str] = field(default_factory=list)  # partitions removed from the lake and the catalog (R3)
    waiting: list[str] = field(default_factory=list)  # emptied less than a grace period ago
    manifests_updated: int = 0
    manifests_deleted: int = 0
    catalog_dropped: int = 0
    quarantine_deleted: list[str] = field(default_factory=list)
    criteria_pruned: list[str] = field(default_factory=list)  # erasure criteria whose range ended before the horizon
    errors: list[tuple[str, str]] = field(default_factory=list)
    stopped_early: bool = False


def horizon_hour(now: datetime, older_than: timedelta) -> str:
    """The first hour that is kept: every hour that ended at least ``older_than`` before ``now`` goes."""
    cutoff = (now - older_than).astimezone(UTC)
    return cutoff.isoformat(timespec="hours")[:13]  # the year in four digits (strftime's %Y is not, before 1000)


def expire(
    lake: GenerationalLake, options: ExpiryOptions, catalog: PartitionCatalog | None = None
) -> ExpiryReport:
    """Expire the hours before the horizon (R1-R3) and the quarantine files past theirs (docs/COMPACTION.md)."""
    report = ExpiryReport()
    if options.derived is None:
        options = replace(options, derived=tuple(lake.derived))
    if options.older_than is not None:
        wanted = horizon_hour(options.now, options.older_than)
        if options.dry_run:
            policy = read_policy(lake.store).policy
            _advance(policy, wanted, report.criteria_pruned)
            report.expired_before = policy.expired_before
        else:

            def advance(policy: LakePolicy) -> bool:  # R1 (called again on a newer policy after a conflict)
                report.criteria_pruned.clear()
                return _advance(policy, wanted, report.criteria_pruned)

            report.expired_before = update_policy(lake.store, advance).expired_before
        Expirer(lake, options, catalog, report).run(hour_start(str(report.expired_before)))
    if options.quarantine_older_than is not None and not report.stopped_early:
        report.quarantine_deleted = expire_quarantine(
            lake, options.now - options.quarantine_older_than, dry_run=options.dry_run
        )
    return report


def _advance(policy: LakePolicy, hour: str, pruned: list[str]) -> bool:
    """The policy's horizon moved forward to ``hour`` (never back), and without the erasure criteria whose range
    ends at or before it (their ids into ``pruned``): they match only rows of expired hours, which ingest and
    expiry drop anyway, and every ingest would otherwise go on testing its rows against them. Their audit records
    stay. Whether it changed."""
    advanced = policy.expired_before is None or policy.expired_before < hour
    if advanced:
        policy.expired_before = hour
    horizon = hour_start(str(policy.expired_before))
    outlived = [c.id for c in policy.erasures if _ends_by(c, horizon)]
    pruned.extend(outlived)
    policy.erasures = [c for c in policy.erasures if c.id not in outlived]
    return advanced or bool(outlived)


def _ends_by(criterion: Criterion, moment: datetime) -> bool:
    end = parse_time(criterion.end)
    return end is not None and end <= moment


@dataclass
class _Marker:
    at: datetime


class Expirer:
    """One expiry run over the partitions before a horizon."""

    def __init__(
        self, lake: GenerationalLake, options: ExpiryOptions, catalog: PartitionCatalog | None, report: ExpiryReport
    ) -> None:
        self.lake = lake
        self.options = options
        self.catalog = catalog
        self.report = report

    def run(self, before: datetime) -> None:
        known = lake_partitions(self.lake)
        for partition in sorted(p for p in known if partition_start(p) < before):
            if self.options.should_stop():
                self.report.stopped_early = True
                return
            try:
                self.partition(partition)
            except Exception as error:  # an error stays with its partition; the next run tries again
                self.report.errors.append((partition.path, f"{type(error).__name__}: {error}"))
        if not self.options.dry_run:
            self._sweep_manifests(before)
        if self.catalog is not None and not self.options.dry_run:
            self._sweep_catalog(before, known)

    def partition(self, partition: Partition) -> None:
        marker = self._marker(partition)
        if marker is not None and self._empty(partition):
            if self.options.now - marker.at < self.options.grace:
                if not self.options.dry_run:  # repairs a run that died between R2's swap and its Location move
                    self._finish_emptying(partition)
                self.report.waiting.append(partition.path)
                return
            if self.options.dry_run or self._drop(partition):
                self.report.dropped.append(partition.path)
            return
        if not self.options.dry_run:
            self._empty_out(partition)
        self.report.emptied.append(partition.path)

    # -------------------------------------------------------------------------------------------------- R2
    def _empty_out(self, partition: Partition) -> None:
        """R2: the marker, then the state swapped to an empty generation, then the Location."""
        lake = self.lake
        body = {"at": now_iso(self.options.now)}
        lake.store.put_bytes(_marker_key(partition), (json.dumps(body) + "\n").encode())
        for _ in range(lake.attempts):
            live = lake.read_state(partition)
            old = live.state
            if live.tag is not None and not old.sources and not _parquet_keys(lake, old.live):
                break  # empty already (the marker's time was renewed)
            generation = old.generation + 1
            empty = PartitionState(
                partition, generation=generation, live=generation_folder(partition, generation),
                compacted_at=old.compacted_at,
            )
            empty.retired = [*old.retired, RetiredFolder(old.live, now_iso(self.options.now))]
            if lake._swap(live, empty):
                break
        else:
            raise LakeConflictError(f"{partition.path}: gave up after {lake.attempts} conflicting writes")
        self._finish_emptying(partition)

    def _finish_emptying(self, partition: Partition) -> None:
        """R2c: the pending marker (the retired folder is deleted later), the Location, the derived partitions."""
        if self.lake.read_state(partition).state.retired:
            self.lake._mark_pending(partition)
        self.lake._point([partition])
        if self.catalog is not None:
            for table in self.options.derived or ():
                self.report.catalog_dropped += self.catalog.drop(table.name, [partition])

    # -------------------------------------------------------------------------------------------------- R3
    def _drop(self, partition: Partition) -> bool:
        """R3: clear the state, delete every folder, drop the catalog partitions, then the state and the marker.
        False when a writer changed the partition meanwhile (the next run goes on)."""
        lake, store = self.lake, self.lake.store
        live = lake.read_state(partition)
        keep = None
        if live.tag is not None:
            lake._point([partition])  # repairs a run that died between R2's swap and its Location move
            old = live.state
            cleared = PartitionState(
                partition, generation=old.generation, live=old.live, compacted_at=old.compacted_at
            )
            if not lake._swap(live, cleared):  # a rewrite in flight (it read the state before) loses its swap
                return False
            live = lake.read_state(partition)
            if live.state.write_token != cleared.write_token:
                return False
            keep = cleared.live
        folders = f"{COMPACTED_PREFIX}{partition.path}/"
        for prefix in (partition_location(partition), folders, lineage_key(folders)):
            for key in list(store.list_keys(prefix)):
                if keep is None or not key.startswith(keep):
                    store.delete(key)
        if self.catalog is not None:
            for table in [self.options.table, *(d.name for d in self.options.derived or ())]:
                self.report.catalog_dropped += self.catalog.drop(table, [partition])
        for derived in self.options.derived or ():  # its files mirror the data tree: <prefix> + the key under alb_logs/
            for folder in (partition.path + "/", f"{COMPACTED_PREFIX.removeprefix(DATA_PREFIX)}{partition.path}/"):
                for key in list(store.list_keys(derived.prefix + folder)):
                    store.delete(key)
        store.delete(pending_key(partition))
        final = lake.read_state(partition)
        if final.tag != live.tag:
            return False  # a commit after all: the next run empties it again
        if final.tag is not None:
            store.delete(state_key(partition))
        store.delete(_marker_key(partition))
        return True

    def _sweep_manifests(self, before: datetime) -> None:
        """R3, objects: every manifest that names a partition before the horizon forgets it; an object left with
        none (or one older than the horizon by its ALB name with none at all) loses its manifest and quarantine
        file. Objects whose ALB name ends after the horizon are skipped unread (one listing of the manifests)."""
        for key in list(self.lake.store.list_keys(MANIFEST_PREFIX)):
            stem = key[len(MANIFEST_PREFIX) :].removesuffix(".json")
            end = _name_time(stem)
            if end is not None and end >= before + timedelta(hours=1):  # its rows end within minutes of its name
                continue
            if self.options.should_stop():
                self.report.stopped_early = True
                return
            try:
                self._forget_partitions(stem, before, end)
            except Exception as error:  # an error stays with its object; the next run tries again
                self.report.errors.append((key, f"{type(error).__name__}: {error}"))

    def _forget_partitions(self, stem: str, before: datetime, end: datetime | None) -> None:
        """The object's manifest without its partitions before ``before``; an object left with none: its manifest
        and quarantine file go."""
        store = self.lake.store
        for _ in range(self.lake.attempts):
            current = store.get_versioned(manifest_key(stem))
            if current is None:
                return
            try:
                body: dict[str, Any] = json.loads(current.content)
                partitions = [str(p) for p in body.get("partitions", [])]
                files = [str(f) for f in body.get("files", [])]
            except (ValueError, TypeError, AttributeError):
                return  # unreadable: a commit reads it as "no manifest" anyway
            expired = {p for p in partitions if (q := partition_of_path(p)) is not None and partition_start(q) < before}
            kept_partitions = [p for p in partitions if p not in expired]
            kept_files = [f for f in files if (folder := owning_folder(f)) is None or folder[0].path not in expired]
            if not partitions and end is not None and end < before:  # only quarantined lines, older than the horizon
                kept_partitions = []
            elif kept_partitions == partitions:
                return
            if not kept_partitions:
                store.delete(quarantine_key(stem))
                store.delete(manifest_key(stem))
                self.report.manifests_deleted += 1
                return
            body.update(partitions=kept_partitions, files=kept_files)
            try:
                store.put_bytes_if(manifest_key(stem), (json.dumps(body) + "\n").encode(), current.tag)
            except ConditionFailedError:
                continue  # rewritten meanwhile (its object ingested again): forget the partition in that one
            self.report.manifests_updated += 1
            return

    # ------------------------------------------------------------------------------------------------ helpers
    def _marker(self, partition: Partition) -> _Marker | None:
        content = self.lake.store.get(_marker_key(partition))
        if content is None:
            return None
        try:
            body = json.loads(content)
            return _Marker(parse_iso(str(body["at"])))
        except (ValueError, KeyError, TypeError):
            return None  # unreadable: R2 writes it again

    def _empty(self, partition: Partition) -> bool:
        live = self.lake.read_state(partition)
        return not live.state.sources and not _parquet_keys(self.lake, live.state.live)

    def _sweep_catalog(self, before: datetime, known: set[Partition]) -> None:
        """Catalog partitions before the horizon that the lake does not know (a Location re-created by a writer
        that pointed at an empty partition after it was dropped): dropped."""
        assert self.catalog is not None
        next_day = (before + timedelta(days=1)).strftime("%Y-%m-%d")
        for table in [self.options.table, *(d.name for d in self.options.derived or ())]:
            strays = [
                p for p in self.catalog.partitions_before(table, next_day)
                if partition_start(p) < before and p not in known
            ]
            if strays:
                self.report.catalog_dropped += self.catalog.drop(table, strays)


def _marker_key(partition: Partition) -> str:
    return f"{EXPIRED_PREFIX}{partition.path}"


# ------------------------------------------------------------------------------------------------ quarantine


def expire_quarantine(lake: GenerationalLake, before: datetime, *, dry_run: bool = False) -> list[str]:
    """Delete the quarantine files of objects older than ``before`` (by the end time in their ALB name, else their
    newest partition-hour); files whose object cannot be dated are kept. The keys deleted."""
    deleted = []
    for key in list(lake.store.list_keys(QUARANTINE_PREFIX)):
        if not key.endswith(".jsonl"):
            continue
        stem = key[len(QUARANTINE_PREFIX) :].removesuffix(".jsonl")
        when = _object_time(lake, stem, key)
        if when is not None and when < before:
            if not dry_run:
                lake.store.delete(key)
            deleted.append(key)
    return deleted


def _name_time(stem: str) -> datetime | None:
    """The end of the 5-minute interval an ALB object's name gives (kept in its stem), if it has one."""
    found = _ALB_END_TIME.search(stem)
    return None if found is None else datetime.strptime(found.group(1), "%Y%m%dT%H%MZ").replace(tzinfo=UTC)


def _object_time(lake: GenerationalLake, stem: str, key: str) -> datetime | None:
    named = _name_time(stem)
    if named is not None:
        return named
    content = lake.store.get(key) or b""
    try:
        source = str(json.loads(content.split(b"\n", 1)[0])["source"])
    except (ValueError, KeyError, TypeError):
        source = ""
    parsed = classify_key(source)
    if isinstance(parsed, AccessLogKey):
        return parsed.end_time
    manifest = lake.store.get(f"{MANIFEST_PREFIX}{stem}.json")
    try:
        paths = [str(p) for p in json.loads(manifest or b"{}").get("partitions", [])]
    except (ValueError, AttributeError):
        return None
    hours = [partition_start(p) + timedelta(hours=1) for p in map(partition_of_path, paths) if p is not None]
    return max(hours, default=None)
