"""Where finished lake files go. The core stages files locally; a sink publishes each one atomically."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Protocol


class LakeSink(Protocol):
    def publish(self, key: str, local_path: Path) -> None:
        """Make ``local_path`` visible at ``key`` (relative to the lake root) in one atomic step."""
        ...

    def read(self, key: str) -> bytes | None:
        """The content at ``key``, or None when there is none."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; nothing happens when it does not exist."""
        ...


class LocalLakeSink:
    """A lake in a local directory; publishing is a rename, so readers never see a partial file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def staging_dir(self) -> Path:
        """A staging directory on the lake's filesystem, so that publishing is a plain rename.

        Its name starts with '.', which Hive, Athena, DuckDB and pyarrow datasets all ignore.
        """
        path = self.root / ".staging"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def publish(self, key: str, local_path: Path) -> None:
        destination = self.root / key
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            local_path.replace(destination)
        except OSError:  # another filesystem: copy next to the destination, then rename
            temporary = destination.with_name(f".{destination.name}.tmp")
            shutil.copyfile(local_path, temporary)
            temporary.replace(destination)
            local_path.unlink()

    def read(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)
