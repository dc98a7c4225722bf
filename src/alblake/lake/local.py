"""``LocalStore``: an ``ObjectStore`` in a local directory; a put is a rename, so readers never see a part."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

STAGING_DIR = ".staging"  # names starting with '.' are ignored by Hive, Athena, DuckDB and pyarrow datasets


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def staging_dir(self) -> Path:
        """A directory on the lake's filesystem, so that a put is a plain rename."""
        path = self.root / STAGING_DIR
        path.mkdir(parents=True, exist_ok=True)
        return path

    def put_file(self, key: str, local_path: Path) -> None:
        destination = self.root / key
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            local_path.replace(destination)
        except OSError:  # another filesystem: copy next to the destination, then rename
            temporary = destination.with_name(f".{destination.name}.tmp")
            shutil.copyfile(local_path, temporary)
            temporary.replace(destination)
            local_path.unlink()

    def get(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def list_keys(self, prefix: str) -> Iterator[str]:
        base = self.root / prefix
        if not base.is_dir():
            return
        for path in sorted(base.rglob("*")):
            relative = path.relative_to(self.root)
            if path.is_file() and not any(part.startswith((".", "_")) for part in relative.parts):
                yield relative.as_posix()

    def url(self, key: str) -> str:
        return (self.root / key).resolve().as_posix()
