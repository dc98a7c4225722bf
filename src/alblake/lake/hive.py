"""``HiveLake``: the lake as Hive-partitioned files in an object store, plus an optional catalog.

Layout: ``alblake.lake.layout`` (one Parquet file per source object and partition-hour).

Commit protocol for one staged object (the order is what makes re-runs and retries safe):

1. read the object's previous manifest (what its last commit wrote);
2. put every data file, then the quarantine file: each put is atomic and replaces the file of the same key,
   so a re-run replaces rows instead of adding them;
3. register the partitions in the catalog (idempotent);
4. delete the files the previous commit wrote and this one did not (only after their replacements are
   visible, and only the object's own ``alb_logs/`` and ``quarantine/`` keys);
5. write the manifest last: a failure anywhere before leaves the previous manifest, so the retry repeats the
   cleanup.

A failure between two puts leaves the object partly visible until its retry republishes the same keys.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

from alblake.lake.layout import DATA_PREFIX, data_key, is_own_file, manifest_key, quarantine_key
from alblake.lake.staged import StagedObject
from alblake.ports import CommitResult, ObjectStore, PartitionRegistrar


class HiveLake:
    def __init__(self, store: ObjectStore, registrar: PartitionRegistrar | None = None) -> None:
        self.store = store
        self.registrar = registrar

    def commit(self, staged: StagedObject) -> CommitResult:
        stem = staged.stem
        earlier = read_manifest(self.store.get(manifest_key(stem)), stem)
        written = []
        for data in staged.data:
            key = data_key(data.partition, stem)
            self.store.put_file(key, data.path)
            written.append(key)
        if staged.quarantine_path is not None:
            key = quarantine_key(stem)
            self.store.put_file(key, staged.quarantine_path)
            written.append(key)
        created = self.registrar.register(staged.partitions) if self.registrar is not None else 0
        stale = sorted(set(earlier) - set(written))
        for key in stale:
            self.store.delete(key)
        self._write_manifest(staged, written)
        return CommitResult(written=written, deleted=stale, partitions_created=created)

    def _write_manifest(self, staged: StagedObject, written: list[str]) -> None:
        manifest = {
            "source": staged.source_id,
            "files": written,
            "lines": staged.lines,
            "rows": staged.rows,
            "quarantined": staged.quarantined,
            "quarantine_stored": staged.quarantine_stored,
            "quarantine_reasons": staged.quarantine_reasons,
        }
        body = json.dumps(manifest, indent=1) + "\n"
        with tempfile.NamedTemporaryFile("w", dir=staged.stage_dir, suffix=".json", delete=False) as listing:
            listing.write(body)
        self.store.put_file(manifest_key(staged.stem), Path(listing.name))

    def staging_dir(self) -> Path:
        return self.store.staging_dir()

    def visible_files(self) -> Sequence[str]:
        keys = (key for key in self.store.list_keys(DATA_PREFIX) if key.endswith(".parquet"))
        return sorted(self.store.url(key) for key in keys)


def read_manifest(content: bytes | None, stem: str) -> list[str]:
    """Keys an earlier manifest of the object lists; only the object's own lake files count.

    A missing or unreadable manifest lists nothing, so nothing is deleted (fail-safe).
    """
    if content is None:
        return []
    try:
        files = json.loads(content)["files"]
    except (ValueError, KeyError, TypeError):
        return []
    if not isinstance(files, list):
        return []
    return [key for key in files if isinstance(key, str) and is_own_file(key, stem)]
