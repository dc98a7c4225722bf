"""Write the lines of an object that did not become rows into a staged JSONL file.

One JSON object per line: ``{"source", "line_number", "reason", "raw"}``, plus ``"raw_base64"`` (the exact
bytes) when the line is not valid UTF-8.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TextIO

from alblake.parse import QuarantinedLine


class QuarantineWriter:
    def __init__(self, staging: Path, source_id: str) -> None:
        self.path = staging / "quarantine.jsonl"
        self.source_id = source_id
        self.count = 0
        self._file: TextIO | None = None

    def add(self, lines: list[QuarantinedLine]) -> None:
        if not lines:
            return
        if self._file is None:
            self._file = self.path.open("w", encoding="utf-8")
        for line in lines:
            self._file.write(json.dumps(self._record(line), ensure_ascii=False) + "\n")
        self.count += len(lines)

    def _record(self, line: QuarantinedLine) -> dict[str, object]:
        record: dict[str, object] = {"source": self.source_id, "line_number": line.line_number, "reason": line.reason}
        try:
            record["raw"] = line.raw.decode("utf-8")
        except UnicodeDecodeError:  # readable approximation plus the exact bytes
            record["raw"] = line.raw.decode("utf-8", errors="backslashreplace")
            record["raw_base64"] = base64.b64encode(line.raw).decode("ascii")
        return record

    def close(self) -> Path | None:
        """The staged file, or None when no line was quarantined."""
        if self._file is None:
            return None
        self._file.close()
        return self.path
