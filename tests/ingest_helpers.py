"""Log objects that misbehave, for the tests of parallel ingest (picklable: they are sent to worker processes)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


@dataclass(frozen=True)
class KillsItsWorker:
    """A source whose reading ends the worker process abruptly (as the kernel's OOM killer would)."""

    path: Path
    size: int = 1

    @property
    def source_id(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return str(self.path)

    def open(self) -> BinaryIO:
        os._exit(9)
