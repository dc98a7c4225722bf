"""``LocalStore``: an ``ObjectStore`` in a local directory; a put is a rename, so readers never see a part.

Compare-and-swap (``put_bytes_if``) holds an exclusive ``fcntl`` lock on a lock file under ``.locks/`` while it
compares the current content's digest with the expected tag and renames the new content into place, so two
processes (two ``alblake`` commands on one lake) cannot both win.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from alblake.ports import ConditionFailedError, Versioned

STAGING_DIR = ".staging"  # names starting with '.' are ignored by Hive, Athena, DuckDB and pyarrow datasets
LOCKS_DIR = ".locks"


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._resolved_root: Path | None = None

    def staging_dir(self) -> Path:
        """A directory on the lake's filesystem, so that a put is a plain rename."""
        path = self.root / STAGING_DIR
        if not path.is_dir():
            path.mkdir(parents=True, exist_ok=True)
        return path

    def put_file(self, key: str, local_path: Path) -> None:
        destination = self.root / key
        try:
            _move(local_path, destination)
        except FileNotFoundError:
            if not local_path.exists():
                raise
            destination.parent.mkdir(parents=True, exist_ok=True)  # folders are made when first needed
            _move(local_path, destination)

    def get(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        """Remove the file and the folders it leaves empty (as on S3, where folders do not exist)."""
        path = self.root / key
        path.unlink(missing_ok=True)
        for parent in path.parents:
            if parent == self.root or self.root not in parent.parents:
                break
            try:
                parent.rmdir()
            except OSError:  # not empty (or gone): stop
                break

    def list_keys(self, prefix: str, start_after: str = "") -> Iterator[str]:
        directory = prefix.rpartition("/")[0]
        base = self.root / directory if directory else self.root
        keys: list[str] = []
        for current, folders, files in os.walk(base):
            folders[:] = [f for f in folders if not f.startswith((".", "_"))]  # hidden: not listed, not walked
            relative = Path(current).relative_to(self.root).as_posix()
            start = "" if relative == "." else f"{relative}/"
            keys.extend(
                key
                for name in files
                if not name.startswith((".", "_")) and (key := start + name).startswith(prefix) and key > start_after
            )
        yield from sorted(keys)

    def list_sizes(self, prefix: str) -> Iterator[tuple[str, int]]:
        for key in self.list_keys(prefix):
            try:
                yield key, (self.root / key).stat().st_size
            except FileNotFoundError:  # deleted since the listing: as S3, a listing is a moment's view
                continue

    def download(self, key: str, local_path: Path) -> None:
        shutil.copyfile(self.root / key, local_path)

    def open(self, key: str) -> BinaryIO:
        return (self.root / key).open("rb")

    def copy(self, source_key: str, key: str) -> None:
        """A hard link where the filesystem allows it (files are never changed in place: a put renames a new file
        over the name), else a copy under a private name renamed into place."""
        destination = self.root / key
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = destination.with_name(f".{destination.name}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            os.link(self.root / source_key, temporary)
        except FileNotFoundError:
            raise
        except OSError:
            shutil.copyfile(self.root / source_key, temporary)
        _replace_or_discard(temporary, destination)

    def get_versioned(self, key: str) -> Versioned | None:
        content = self.get(key)
        return None if content is None else Versioned(content, _tag(content))

    def put_bytes(self, key: str, content: bytes) -> None:
        destination = self.root / key
        # a private name ('.' hides it from readers): this process's id and a random part, created exclusively
        temporary = destination.with_name(f".{destination.name}.{os.getpid()}.{secrets.token_hex(4)}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            descriptor = os.open(temporary, flags, 0o644)
        except FileNotFoundError:
            destination.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(temporary, flags, 0o644)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(content)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _replace_or_discard(temporary, destination)

    def put_bytes_if(self, key: str, content: bytes, expected_tag: str | None) -> None:
        locks = self.root / LOCKS_DIR
        locks.mkdir(parents=True, exist_ok=True)
        lock_path = locks / hashlib.sha256(key.encode()).hexdigest()[:32]
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            current = self.get_versioned(key)
            current_tag = None if current is None else current.tag
            if current_tag != expected_tag:
                raise ConditionFailedError(f"{key}: expected version {expected_tag}, found {current_tag}")
            self.put_bytes(key, content)
        finally:
            os.close(descriptor)  # releases the lock

    def url(self, key: str) -> str:
        if self._resolved_root is None:
            self._resolved_root = self.root.resolve()
        return (self._resolved_root / key).as_posix()


def _move(local_path: Path, destination: Path) -> None:
    """Rename; across filesystems, copy next to the destination (a private name), then rename."""
    try:
        local_path.replace(destination)
        return
    except FileNotFoundError:
        raise
    except OSError:
        pass
    with tempfile.NamedTemporaryFile(dir=destination.parent, prefix=".", delete=False) as temporary:
        pass
    try:
        shutil.copyfile(local_path, temporary.name)
    except BaseException:
        Path(temporary.name).unlink(missing_ok=True)
        raise
    _replace_or_discard(Path(temporary.name), destination)
    local_path.unlink()


def _tag(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _replace_or_discard(temporary: Path, destination: Path) -> None:
    """Rename ``temporary`` over ``destination``; on failure remove it (no hidden leftovers in the lake)."""
    try:
        temporary.replace(destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
