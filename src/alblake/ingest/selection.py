"""Input selection: the log objects that paths name (local files, globs, directories; ``s3://`` prefixes
through ``alblake.aws.s3_listing``), each with its source id, and what could not be found."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from alblake.ingest.filters import EVERY_OBJECT, ObjectFilter
from alblake.keys import LOG_SUFFIXES


class LogObject(Protocol):
    """A log object to ingest (picklable: it is sent to worker processes)."""

    @property
    def source_id(self) -> str:
        """Identity for output naming (``alblake.lake.layout.object_stem``)."""
        ...

    @property
    def name(self) -> str:
        """How messages name it."""
        ...

    @property
    def size(self) -> int:
        """Bytes (compressed), for progress."""
        ...

    def open(self) -> BinaryIO: ...


@dataclass(frozen=True)
class LocalFile:
    path: Path
    size: int
    source_id: str

    @classmethod
    def at(cls, path: Path, resolved_folders: dict[Path, Path] | None = None) -> LocalFile:
        return cls(path, path.stat().st_size, local_source_id(path, resolved_folders))

    @property
    def name(self) -> str:
        return str(self.path)

    def open(self) -> BinaryIO:
        return self.path.open("rb")


@dataclass(frozen=True)
class Failure:
    """An object that was not ingested, and why (nothing of it is in the lake)."""

    name: str
    reason: str


@dataclass
class Selection:
    """What the paths named: objects to ingest, names that could not be found, objects left out."""

    objects: list[LogObject] = field(default_factory=list)
    missing: list[Failure] = field(default_factory=list)
    skipped: int = 0


def _is_pattern(text: str) -> bool:
    return any(char in text for char in "*?[")


def expand_paths(patterns: Iterable[str]) -> list[Path]:
    """Files named directly, matched by a glob, or found (``*.log``, ``*.log.gz``) under a directory."""
    found: list[Path] = []
    for pattern in patterns:
        matches = [Path(p) for p in sorted(glob.glob(pattern, recursive=True))]  # noqa: PTH207
        if not matches:  # reported by select_local: "no such file" or "no file matches"
            matches = [Path(pattern)]
        for path in matches:
            if path.is_dir():
                found.extend(sorted(p for p in path.rglob("*") if _is_log_file(p)))
            else:
                found.append(path)
    return list(dict.fromkeys(found))


def _is_log_file(path: Path) -> bool:
    """A log file found in a folder: its name says so and it is a file, or a symbolic link whose target is gone
    (kept, so that it is reported rather than skipped silently)."""
    return path.name.endswith(LOG_SUFFIXES) and (path.is_file() or (path.is_symlink() and not path.exists()))


def select_local(patterns: Iterable[str], object_filter: ObjectFilter = EVERY_OBJECT) -> Selection:
    selection = Selection()
    resolved_folders: dict[Path, Path] = {}
    for path in expand_paths(patterns):
        if not object_filter.accepts_name(path.name):
            selection.skipped += 1
            continue
        try:
            selection.objects.append(LocalFile.at(path, resolved_folders))
        except FileNotFoundError:
            reason = "no file matches this pattern" if _is_pattern(str(path)) else "no such file"
            if path.is_symlink():
                reason = f"a symbolic link to {path.readlink()}, which does not exist"
            selection.missing.append(Failure(str(path), reason))
        except OSError as exc:
            selection.missing.append(Failure(str(path), exc.strerror or str(exc)))
    return selection


def local_source_id(path: Path, resolved_folders: dict[Path, Path] | None = None) -> str:
    """Identity of a local log file for output naming: from 'AWSLogs/' on when the path has it (a copy of the
    bucket layout, so the same ALB object ingested from two directories replaces itself), else the full path.
    ``resolved_folders`` caches resolved folders across the files of one folder (resolving is most of the cost)."""
    if resolved_folders is None or path.is_symlink():
        resolved = path.resolve().as_posix()
    else:
        folder = resolved_folders.get(path.parent)
        if folder is None:
            folder = resolved_folders[path.parent] = path.parent.resolve()
        resolved = (folder / path.name).as_posix()
    # a name that is not UTF-8 (bytes the filesystem allows) gets its odd bytes as \xHH: an id is text the lake
    # stores in JSON and Parquet, and the same name always gives the same id
    resolved = os.fsencode(resolved).decode("utf-8", "backslashreplace")
    marker = resolved.find("/AWSLogs/")
    return resolved[marker + 1 :] if marker >= 0 else resolved
