"""Replay: after a parser upgrade, re-ingest the source objects that have quarantined lines.

The lake's quarantine files (``quarantine/<stem>.jsonl``, one JSON record per line that did not become a row,
with its ``source`` and ``reason``) are the index: they name each source object and why its lines were
rejected. Re-ingesting a source replaces its rows and quarantine file (commits replace, never add), so lines
the new parser accepts become rows exactly once and the rest stay quarantined.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

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
    from alblake.convert.quarantine import reason_counts  # the parser's module: loaded when a command needs it

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


@dataclass(frozen=True)
class SourceRoots:
    """Where replay (and repair) may read source objects from: only under the roots the user names.

    The lake's quarantine and manifest files name source ids, but a lake is data, not a trusted instruction: a
    crafted record could name ``/home/me/.aws/credentials`` or ``../../etc/passwd``. So a local id is read only
    when its file lies inside one of ``directories`` (after resolving ``..`` and symbolic links): an absolute id
    must be under a root, a relative one (``AWSLogs/...``, from a copy of the bucket layout) is looked up under
    each root. An ``s3://bucket/key`` id is read only under one of ``prefixes`` (``s3://bucket/prefix``), or
    from any bucket when ``any_bucket`` (the ingest queue, whose function can read only its own log bucket)."""

    directories: tuple[Path, ...] = ()
    prefixes: tuple[str, ...] = ()
    any_bucket: bool = False

    @classmethod
    def of(cls, roots: Iterable[str | Path], *, any_bucket: bool = False) -> SourceRoots:
        texts = [str(r) for r in roots]
        return cls(
            tuple(Path(t).resolve() for t in texts if not t.startswith("s3://")),
            tuple(t.rstrip("/") + "/" for t in texts if t.startswith("s3://")),
            any_bucket,
        )

    def allows_remote(self, source_id: str) -> bool:
        return self.any_bucket or any(source_id.startswith(prefix) for prefix in self.prefixes)

    def local_file(self, source_id: str) -> LogObject | Failure:
        """The file a local id names inside a root, with its size; else why it is not read."""
        if not self.directories:
            return Failure(source_id, NO_ROOT)
        relative = Path(source_id)
        if not relative.is_absolute() and ".." in relative.parts:
            return Failure(source_id, "names a parent folder ('..'): not read")
        for root in self.directories:
            candidate = (root / relative) if not relative.is_absolute() else relative
            try:
                resolved = candidate.resolve()
            except (OSError, RuntimeError):
                continue
            if resolved.is_relative_to(root):
                try:
                    return LocalFile(resolved, resolved.stat().st_size, source_id)
                except OSError:
                    if relative.is_absolute():
                        return Failure(source_id, f"source file {resolved} is no longer there")
        if relative.is_absolute():
            return Failure(source_id, "lies outside every --source-root: not read")
        return Failure(source_id, "source file is no longer there under any --source-root")


NO_ROOT = "is a local file: give --source-root DIR (the folder it was ingested from) to read it again"


def local_source(source_id: str, roots: SourceRoots) -> LogObject | Failure:
    """The file a local source id names, if it lies under one of the user's roots (``SourceRoots``)."""
    return roots.local_file(source_id)
