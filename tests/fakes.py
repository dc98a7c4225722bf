"""In-memory fakes of the ports the use cases need besides the lake (``tests/lake_fakes.py`` has the store and
the catalog): fast unit tests without moto."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from alblake.errors import ObjectMissingError


@dataclass
class MemoryReader:
    """An ObjectReader over a dict of (bucket, key) -> bytes; a missing object is ``ObjectMissingError``."""

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
