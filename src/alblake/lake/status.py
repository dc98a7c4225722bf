"""``alblake status``: what a lake holds, per load balancer (pure core over the lake's store; no AWS imports).

Sources of truth: the visible files (``GenerationalLake.visible_files``: what readers read) and their Parquet
footers (rows, min/max ``time`` from row-group statistics), the object manifests (objects ingested, their
partitions), the quarantine files (lines that are not rows, by reason) and the partition states (late objects:
committed into an hour that had been compacted already).

Completeness: ALB writes one object per load-balancer node every 5 minutes (``<end>_<node-ip>_`` in the name).
A *gap* is a 5-minute interval, between a node's first and last delivered object, for which that node delivered
nothing (an idle node may legitimately deliver nothing, so gaps are reported, not judged). Gaps are counted from
the interval between two deliveries, never listed one by one (a node silent for years is one interval); the
longest intervals are listed.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow.parquet as pq

from alblake.convert.quarantine import reason_counts
from alblake.display import printable
from alblake.keys import AccessLogKey, classify_key
from alblake.lake.generational import GenerationalLake
from alblake.lake.generations import partition_of_path
from alblake.lake.layout import QUARANTINE_PREFIX, Partition
from alblake.lake.merge import UnreadableInputError
from alblake.lake.repair import Damage, DuplicateObject, Manifest, find_damage, find_duplicates, read_manifests
from alblake.ports import ObjectStore

DELIVERY_INTERVAL = timedelta(minutes=5)
STALE_AFTER = timedelta(minutes=60)  # default: twelve delivery intervals without a new object
UNKNOWN_LB = "(unknown)"
_MAX_LISTED_GAPS = 20


@dataclass(frozen=True)
class Gap:
    """Deliveries a node missed: between its delivery ending at ``after`` and the next, ending at ``before``."""

    node: str
    after: datetime
    before: datetime

    @property
    def missed(self) -> int:
        """5-minute deliveries missing in between (counted, never listed one by one: a node silent for years
        would otherwise fill the memory)."""
        return max(-(-(self.before - self.after) // DELIVERY_INTERVAL) - 1, 0)

    def as_dict(self) -> dict[str, Any]:
        return {"node": self.node, "after": _iso(self.after), "before": _iso(self.before), "missed": self.missed}


@dataclass
class BalancerStatus:
    objects: int = 0
    first_time: datetime | None = None
    last_time: datetime | None = None
    partitions: int = 0
    visible_files: int = 0
    compacted_partitions: int = 0
    rows: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    nodes: int = 0
    gaps: list[Gap] = field(default_factory=list)  # runs of missed deliveries, by node
    newest_delivery: datetime | None = None  # end time of the newest object delivered (from the ALB file names)
    late_objects: int = 0

    @property
    def missed_deliveries(self) -> int:
        return sum(gap.missed for gap in self.gaps)

    def largest_gaps(self) -> list[Gap]:
        """The ``_MAX_LISTED_GAPS`` longest gaps, oldest first."""
        longest = sorted(self.gaps, key=lambda gap: (-gap.missed, gap.after))[:_MAX_LISTED_GAPS]
        return sorted(longest, key=lambda gap: (gap.after, gap.node))

    def as_dict(self) -> dict[str, Any]:
        return {
            "objects": self.objects,
            "first_time": _iso(self.first_time),
            "last_time": _iso(self.last_time),
            "partitions": self.partitions,
            "compacted_partitions": self.compacted_partitions,
            "visible_files": self.visible_files,
            "rows": self.rows,
            "quarantined": sum(self.quarantined.values()),
            "quarantined_by_reason": dict(sorted(self.quarantined.items())),
            "nodes": self.nodes,
            "gaps": self.missed_deliveries,
            "gap_intervals": [gap.as_dict() for gap in self.largest_gaps()],
            "newest_delivery": _iso(self.newest_delivery),
            "late_objects": self.late_objects,
        }


@dataclass
class LakeStatus:
    balancers: dict[str, BalancerStatus] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)  # visible files whose footer (or data) cannot be read
    damage: list[Damage] = field(default_factory=list)  # partitions whose bookkeeping names missing files
    duplicates: list[DuplicateObject] = field(default_factory=list)  # objects in the lake under several stems

    def as_dict(self) -> dict[str, Any]:
        quarantined: Counter[str] = Counter()
        for status in self.balancers.values():
            quarantined.update(status.quarantined)
        return {
            "partitions": sum(s.partitions for s in self.balancers.values()),
            "visible_files": sum(s.visible_files for s in self.balancers.values()),
            "rows": sum(s.rows for s in self.balancers.values()),
            "objects": sum(s.objects for s in self.balancers.values()),
            "quarantined": sum(quarantined.values()),
            "quarantined_by_reason": dict(sorted(quarantined.items())),
            "late_objects": sum(s.late_objects for s in self.balancers.values()),
            "gaps": sum(s.missed_deliveries for s in self.balancers.values()),
            "unreadable_files": self.unreadable,
            "damaged_partitions": [d.as_dict() for d in self.damage],
            "duplicate_objects": [d.as_dict() for d in self.duplicates],
            "load_balancers": {name: s.as_dict() for name, s in sorted(self.balancers.items())},
        }


def lake_status(lake: GenerationalLake, *, verify: bool = False) -> LakeStatus:
    """What the lake holds. ``verify``: also read every visible file whole (not only its footer)."""
    status = LakeStatus()
    balancer: defaultdict[str, BalancerStatus] = defaultdict(BalancerStatus)
    _add_files(lake, balancer, status, verify=verify)
    manifests = read_manifests(lake)
    status.damage = find_damage(lake, manifests)
    status.duplicates = find_duplicates(manifests)
    sources = _add_objects(manifests, balancer)
    _add_quarantine(lake, balancer, sources)
    late: defaultdict[str, set[str]] = defaultdict(set)  # an object late in two hours is one late object
    for state in lake.states():
        late[state.partition.elb_name].update(stem for stem, record in state.sources.items() if record.late)
        if state.generation > 0:
            balancer[state.partition.elb_name].compacted_partitions += 1
    for elb_name, stems in late.items():
        balancer[elb_name].late_objects = len(stems)
    status.balancers = dict(balancer)
    return status


def _add_files(
    lake: GenerationalLake, balancer: defaultdict[str, BalancerStatus], status: LakeStatus, *, verify: bool
) -> None:
    partitions: defaultdict[str, set[Partition]] = defaultdict(set)
    for key, partition in lake.visible_keys():
        lb = balancer[partition.elb_name]
        partitions[partition.elb_name].add(partition)
        lb.visible_files += 1
        try:
            rows, first, last = _footer(lake.store, key)
            if verify:
                _read_whole(lake.store, key)
        except UnreadableInputError as error:
            status.unreadable.append(str(error))
            continue
        lb.rows += rows
        lb.first_time = first if lb.first_time is None or (first and first < lb.first_time) else lb.first_time
        lb.last_time = last if lb.last_time is None or (last and last > lb.last_time) else lb.last_time
    for name, found in partitions.items():
        balancer[name].partitions = len(found)


def _footer(store: ObjectStore, key: str) -> tuple[int, datetime | None, datetime | None]:
    """Rows and min/max ``time`` of a data file, from its footer (row-group statistics), read through the lake's
    own store (on S3: ranged reads with the command's one AWS session)."""
    try:
        with store.open(key) as handle:
            metadata = pq.read_metadata(handle)
    except (OSError, ValueError) as error:
        raise UnreadableInputError(f"{store.url(key)}: not a readable Parquet file ({error})") from None
    names = [metadata.schema.column(i).name for i in range(metadata.num_columns)]
    first = last = None
    if "time" in names:
        column = names.index("time")
        for index in range(metadata.num_row_groups):
            stats = metadata.row_group(index).column(column).statistics
            if stats is None or not stats.has_min_max:
                continue
            first = stats.min if first is None or stats.min < first else first
            last = stats.max if last is None or stats.max > last else last
    return metadata.num_rows, first, last


def _read_whole(store: ObjectStore, key: str) -> None:
    """Read every page of a data file, checking the page checksums the lake writes, so a damaged page is found
    now (a query would read it without a word; compaction would refuse it)."""
    try:
        with store.open(key) as handle:
            parquet = pq.ParquetFile(handle, page_checksum_verification=True)
            for index in range(parquet.num_row_groups):
                parquet.read_row_group(index)
    except (OSError, ValueError) as error:
        raise UnreadableInputError(f"{store.url(key)}: its data cannot be read ({error})") from None


def _add_objects(manifests: list[Manifest], balancer: defaultdict[str, BalancerStatus]) -> dict[str, str]:
    """Count objects per load balancer from the manifests and find delivery gaps; the source id -> LB map."""
    lb_of_source: dict[str, str] = {}
    deliveries: defaultdict[tuple[str, str], set[datetime]] = defaultdict(set)
    for manifest in manifests:
        source = manifest.source
        # decoded, as the partitions of the visible files are: a name with other characters than [A-Za-z0-9.-] is
        # escaped in partition paths and must not count as a second load balancer
        partitions = [partition_of_path(path) for path in manifest.partitions]
        names = {p.elb_name for p in partitions if p is not None} or {UNKNOWN_LB}
        parsed = classify_key(source.split("://", 1)[-1])
        for name in names:
            balancer[name].objects += 1
        if isinstance(parsed, AccessLogKey):
            lb_of_source[source] = parsed.lb_name
            deliveries[(parsed.lb_name, parsed.node_ip)].add(parsed.end_time)
        elif len(names) == 1:
            lb_of_source[source] = next(iter(names))
    nodes: Counter[str] = Counter()
    for (lb_name, node), ends in sorted(deliveries.items()):
        nodes[lb_name] += 1
        ordered = sorted(ends)
        lb = balancer[lb_name]
        lb.newest_delivery = max(ordered[-1], lb.newest_delivery or ordered[-1])
        for before, after in itertools.pairwise(ordered):
            if after - before > DELIVERY_INTERVAL:
                lb.gaps.append(Gap(node, before, after))
    for lb_name, count in nodes.items():
        balancer[lb_name].nodes = count
    return lb_of_source


def _add_quarantine(lake: GenerationalLake, balancer: defaultdict[str, BalancerStatus], lbs: dict[str, str]) -> None:
    for key in lake.store.list_keys(QUARANTINE_PREFIX):
        for source, reasons in reason_counts(lake.store.get(key) or b"").items():
            balancer[lbs.get(source, UNKNOWN_LB)].quarantined.update(reasons)


@dataclass(frozen=True)
class Stale:
    """A load balancer whose newest delivered object ended ``age`` ago, longer than expected."""

    name: str
    newest_delivery: datetime
    age: timedelta

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "newest_delivery": _iso(self.newest_delivery),
                "minutes_ago": round(self.age.total_seconds() / 60)}

    def describe(self) -> str:
        return (
            f"{self.name}: newest delivery {_iso(self.newest_delivery)}, {self.age.total_seconds() / 60:,.0f} minutes "
            f"ago (a busy load balancer delivers every {DELIVERY_INTERVAL.total_seconds() / 60:g} minutes per node)"
        )


def stale_balancers(status: LakeStatus, now: datetime, after: timedelta = STALE_AFTER) -> list[Stale]:
    """Load balancers whose newest delivered object (by its ALB name) ended more than ``after`` before ``now``:
    their logs stopped reaching the lake, or they had no traffic (an idle load balancer delivers nothing)."""
    stale = [
        Stale(name, lb.newest_delivery, now - lb.newest_delivery)
        for name, lb in sorted(status.balancers.items())
        if lb.newest_delivery is not None and now - lb.newest_delivery > after
    ]
    return stale


def _iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with Z (as every output of the command line)."""
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


NAME_WIDTH = 20


def _minute(value: datetime | None) -> str:
    """A log time to the minute, ISO 8601 with Z (the table's two time columns fit 120 columns)."""
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _cell(name: str) -> str:
    shown = printable(name)
    return shown if len(shown) <= NAME_WIDTH else shown[: NAME_WIDTH - 1] + "…"


def format_status(status: LakeStatus) -> str:
    """The status as text for a terminal, at most 120 columns wide; names and reasons from the lake are shown
    with control characters escaped."""
    body = status.as_dict()
    lines = [
        f"partitions {body['partitions']}  visible files {body['visible_files']}  rows {body['rows']:,}  "
        f"objects {body['objects']}  quarantined {body['quarantined']:,}  late objects {body['late_objects']}  "
        f"gaps {body['gaps']}",
        "",
    ]
    header = (
        f"{'load balancer':<{NAME_WIDTH}} {'objects':>7} {'parts':>5} {'files':>5} {'rows':>11} {'quarant.':>8} "
        f"{'nodes':>5} {'gaps':>5} {'late':>4}  {'first log':<17}  {'last log':<17}"
    ).rstrip()
    lines.append(header)
    lines.append("-" * (len(header) + 9))
    for name, lb in sorted(status.balancers.items()):
        lines.append(
            f"{_cell(name):<{NAME_WIDTH}} {lb.objects:>7} {lb.partitions:>5} {lb.visible_files:>5} {lb.rows:>11,} "
            f"{sum(lb.quarantined.values()):>8,} {lb.nodes:>5} {lb.missed_deliveries:>5} {lb.late_objects:>4}  "
            f"{_minute(lb.first_time):<17}  {_minute(lb.last_time):<17}".rstrip()
        )
    reasons = body["quarantined_by_reason"]
    if reasons:
        lines.extend(["", "quarantined lines by reason:"])
        lines.extend(
            f"  {count:>9,}  {printable(reason)}" for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1])
        )
    for message in status.unreadable:
        lines.append(f"error: {printable(message)}")
    lines.extend(f"error: {printable(damage.describe())}" for damage in status.damage)
    lines.extend(
        f"error: {printable(d.identity.removeprefix('alb:'))} is in the lake {len(d.stems)} times (read from several "
        "places before objects had one identity)"
        for d in status.duplicates
    )
    return "\n".join(lines)
