"""Backfill: bring history from the log bucket into the deployed lake through the ingest queue.

The log objects (a ListObjectsV2 listing, or an S3 Inventory for millions of objects) are filtered (ALB access
logs only; ``--since/--until/--elb``), objects the lake already has are skipped (their manifest exists: the
lake key ``manifests/<stem>.json`` of the source id ``s3://bucket/key``, the id the ingest function uses) unless
``force``, and the rest are enqueued (``alblake.aws.sqs``). The ingest function consumes the queue.

Resumable: the position in the listing is saved in a state file after every batch that SQS accepted; a re-run
of an unfinished run starts after it (a listing from ``StartAfter`` = the last key, an inventory after the same
number of rows); a re-run of a finished one starts over (the manifests skip what the lake has). An object
enqueued twice is harmless: a commit replaces, never adds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from alblake.aws.events import notification_body
from alblake.ingest.filters import ObjectFilter
from alblake.keys import AccessLogKey, classify_key
from alblake.lake.layout import MANIFEST_PREFIX, legacy_stem, object_stem
from alblake.ports import ObjectStore

FLUSH_EVERY = 100  # objects per SQS round (10 batches) and per state save


class ListedObject(Protocol):
    """An object of the log bucket's listing (``alblake.aws.s3_listing.S3Object``)."""

    @property
    def bucket(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def source_id(self) -> str: ...


class MessageSender(Protocol):
    """Sends messages to the ingest queue (``alblake.aws.sqs.QueueSender``)."""

    def send(self, bodies: Sequence[str]) -> None: ...


@dataclass
class BackfillSummary:
    listed: int = 0
    not_alb_logs: int = 0
    outside_filter: int = 0
    already_in_lake: int = 0
    enqueued: int = 0
    enqueued_bytes: int = 0
    resumed_after: int = 0  # objects of the listing a previous run had already handled

    def lines(self, *, dry_run: bool) -> list[str]:
        verb = "would enqueue" if dry_run else "enqueued"
        out = [f"listed          {self.listed:,} objects"]
        if self.resumed_after:
            out.append(f"resumed after   {self.resumed_after:,} objects handled by an earlier run")
        out += [
            f"not ALB logs    {self.not_alb_logs:,}",
            f"outside filter  {self.outside_filter:,}",
            f"already in lake {self.already_in_lake:,}",
            f"{verb:15s} {self.enqueued:,} objects, {self.enqueued_bytes:,} bytes",
        ]
        return out


@dataclass
class BackfillState:
    """Where a backfill run stands (a local JSON file); ``source`` guards against resuming another run."""

    path: Path
    source: str
    position: int = 0
    last_key: str = ""
    summary: dict[str, int] = field(default_factory=dict)

    complete: bool = False

    @classmethod
    def load(cls, path: Path, source: str) -> BackfillState:
        """The state of an unfinished run, or a fresh one (none yet, or the last run finished: a new run lists
        everything again and the lake's manifests skip what is in)."""
        if not path.exists():
            return cls(path, source)
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("source") != source:
            raise ValueError(f"{path} is the state of a backfill of {data.get('source')!r}, not {source!r}")
        if data.get("complete"):
            return cls(path, source)
        return cls(path, source, int(data["position"]), str(data["last_key"]), dict(data.get("summary", {})))

    def save(self, summary: BackfillSummary) -> None:
        body = {"source": self.source, "position": self.position, "last_key": self.last_key,
                "complete": self.complete, "summary": asdict(summary)}
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
        temporary.replace(self.path)


def stems_in_lake(store: ObjectStore) -> set[str]:
    """Stems of the objects the lake has a manifest for (one listing of ``manifests/``)."""
    return {
        key.removeprefix(MANIFEST_PREFIX).removesuffix(".json")
        for key in store.list_keys(MANIFEST_PREFIX)
        if key.endswith(".json")
    }


def run_backfill(
    objects: Iterable[ListedObject],
    *,
    object_filter: ObjectFilter,
    in_lake: set[str],
    sender: MessageSender | None,
    state: BackfillState | None = None,
    skip_rows: int = 0,
    flush_every: int = FLUSH_EVERY,
) -> BackfillSummary:
    """Enqueue the selected objects (``sender`` None: a dry run that only counts). ``skip_rows`` objects at the
    start of ``objects`` were handled by an earlier run (an inventory; a listing resumes by key instead)."""
    summary = BackfillSummary(resumed_after=state.position if state else 0)
    pending: list[ListedObject] = []
    position = state.position if state else 0
    last_key = state.last_key if state else ""
    for index, item in enumerate(objects):
        if index < skip_rows:
            continue
        summary.listed += 1
        position += 1
        last_key = item.key
        kind = classify_key(item.key)
        if not isinstance(kind, AccessLogKey):
            summary.not_alb_logs += 1
        elif not object_filter.accepts_log_key(kind):
            summary.outside_filter += 1
        elif object_stem(item.source_id) in in_lake or legacy_stem(item.source_id) in in_lake:
            summary.already_in_lake += 1
        else:
            pending.append(item)
        if len(pending) >= flush_every:
            _flush(pending, sender, summary)
            _save(state, position, last_key, summary)
    _flush(pending, sender, summary)
    if state is not None:
        state.complete = True
    _save(state, position, last_key, summary)
    return summary


def _flush(pending: list[ListedObject], sender: MessageSender | None, summary: BackfillSummary) -> None:
    if not pending:
        return
    if sender is not None:
        sender.send([notification_body(o.bucket, o.key, o.size) for o in pending])
    summary.enqueued += len(pending)
    summary.enqueued_bytes += sum(o.size for o in pending)
    pending.clear()


def _save(state: BackfillState | None, position: int, last_key: str, summary: BackfillSummary) -> None:
    if state is None:
        return
    state.position = position
    state.last_key = last_key
    state.save(summary)
