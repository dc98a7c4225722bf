"""In-memory fakes of the ports (``alblake.ports``): fast unit tests of the use cases without moto."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from alblake.errors import ObjectMissingError
from alblake.lake.layout import Partition


class MemoryStore:
    """An ObjectStore in a dict; ``fail_puts`` makes the next puts raise (a throttled or failing S3)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.fail_puts = 0
        self._staging = Path(tempfile.mkdtemp(prefix="memory-store-"))

    def put_file(self, key: str, local_path: Path) -> None:
        if self.fail_puts:
            self.fail_puts -= 1
            raise ConnectionError("S3 503 SlowDown")
        self.objects[key] = local_path.read_bytes()

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def list_keys(self, prefix: str) -> Iterator[str]:
        yield from sorted(k for k in self.objects if k.startswith(prefix))

    def url(self, key: str) -> str:
        return f"memory://{key}"

    def staging_dir(self) -> Path:
        return self._staging


@dataclass
class MemoryRegistrar:
    partitions: set[Partition] = field(default_factory=set)

    def register(self, partitions: Iterable[Partition]) -> int:
        new = set(partitions) - self.partitions
        self.partitions |= new
        return len(new)


@dataclass
class MemorySource:
    """An ObjectSource over a dict of (bucket, key) -> bytes; a missing object is ``ObjectMissingError``."""

    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def open(self, bucket: str, key: str) -> BinaryIO:
        try:
            return io.BytesIO(self.objects[(bucket, key)])
        except KeyError:
            raise ObjectMissingError(f"s3://{bucket}/{key} does not exist") from None


@dataclass(frozen=True)
class Refresh:
    status: str


@dataclass
class CountingRefresher:
    status: str = "requested"
    requests: int = 0

    def request_refresh(self, account_id: str | None = None) -> Refresh:
        self.requests += 1
        return Refresh(self.status)


@dataclass
class RecordingLogger:
    lines: list[tuple[str, str]] = field(default_factory=list)
    keys: dict[str, object] = field(default_factory=dict)

    def _log(self, level: str, msg: object) -> None:
        self.lines.append((level, str(msg)))

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._log("info", msg)

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._log("warning", msg)

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._log("error", msg)

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._log("exception", msg)

    def append_keys(self, **additional_keys: object) -> None:
        self.keys.update(additional_keys)

    def remove_keys(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.keys.pop(key, None)


@dataclass
class RecordingMetrics:
    values: dict[str, list[float]] = field(default_factory=dict)

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.values.setdefault(name, []).append(value)
