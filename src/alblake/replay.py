"""Replay: after a parser upgrade, re-ingest the source objects that have quarantined lines.

The lake's quarantine files (``quarantine/<stem>.jsonl``, one JSON record per line that did not become a row,
with its ``source`` and ``reason``) are the index: they name each source object and why its lines were
rejected. Re-ingesting a source replaces its rows and quarantine file (commits replace, never add), so lines
the new parser accepts become rows exactly once and the rest stay quarantined.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from alblake.convert.quarantine import reason_counts
from alblake.ingest.filters import ObjectFilter
from alblake.ingest.selection import Failure, LocalFile, LogObject
from alblake.lake.layout import QUARANTINE_PREFIX
from alblake.ports import ObjectStore


@dataclass
class QuarantinedSource:
    """One source object with quarantined lines: how many, by reason."""

    source_id: str
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def lines(self) -> int:
        return sum(self.reasons.values())


def quarantine_index(store: ObjectStore) -> dict[str, QuarantinedSource]:
    """Every source with quarantined lines in the lake, by source id."""
    index: dict[str, QuarantinedSource] = {}
    for key in store.list_keys(QUARANTINE_PREFIX):
        content = store.get(key)
        if content is None:
            continue
        for source_id, reasons in reason_counts(content).items():
            index.setdefault(source_id, QuarantinedSource(source_id)).reasons.update(reasons)
    return index


def select_for_replay(
    index: dict[str, QuarantinedSource], *, reason: str | None, object_filter: ObjectFilter
) -> list[QuarantinedSource]:
    """Sources with a quarantined line whose reason contains ``reason`` (any reason: None), within the filter."""
    chosen = []
    for source in index.values():
        if reason is not None and not any(reason in r for r in source.reasons):
            continue
        if not object_filter.accepts_name(source.source_id):
            continue
        chosen.append(source)
    return sorted(chosen, key=lambda s: s.source_id)


def local_source(source_id: str, source_root: Path | None) -> LogObject | Failure:
    """The file a local source id names: an absolute path, or ``AWSLogs/...`` under ``source_root``."""
    if source_id.startswith("/"):
        path = Path(source_id)
    elif source_root is not None:
        path = source_root / source_id
    else:
        return Failure(source_id, "was ingested from a copy of the bucket layout: give --source-root DIR "
                                  "(the directory that holds AWSLogs/)")
    try:
        return LocalFile(path, path.stat().st_size, source_id)
    except OSError:
        return Failure(source_id, f"source file {path} is no longer there")
