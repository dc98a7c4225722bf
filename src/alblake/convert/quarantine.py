"""Write the lines of an object that did not become rows into a staged JSONL file, streamed to disk.

One JSON object per line: ``{"source", "line_number", "reason", "raw"}``, plus ``"raw_base64"`` (the exact
bytes) when the line is not valid UTF-8, and ``"length"`` with ``"truncated": true`` for a line longer than
the parser accepts (only its first bytes are kept).

What an object can put in quarantine is bounded: the first ``STORED_LINES_LIMIT`` lines (and at most
``STORED_BYTES_LIMIT`` bytes of them) are stored verbatim; empty lines are never stored one by one. Every line
is counted, by kind of reason, so ``lines == rows + quarantined`` stays exact. The last record of the file is
always the summary::

    {"source": ..., "summary": {"quarantined": N, "stored": M, "reasons": {"<kind of reason>": count, ...}}}
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TextIO

from alblake.convert.privacy import Privacy
from alblake.parse import EMPTY_LINE as EMPTY_LINE  # re-exported: the parser's reason for a blank line
from alblake.parse import QuarantinedLine
from alblake.parse import reason_kind as reason_kind  # re-exported: the parser names the kinds of its reasons

STORED_LINES_LIMIT = 10_000  # quarantined lines stored verbatim per object; the others are only counted
STORED_BYTES_LIMIT = 32 << 20  # raw bytes stored per object (lines up to 1 MiB each)
REASON_KINDS_LIMIT = 100  # distinct kinds counted separately; further kinds are counted as "other"
OTHER_REASONS = "other"

# JSON allows these raw in strings, but str.splitlines() and JavaScript line readers break lines at them.
_LINE_SEPARATORS = re.compile("[\x85\u2028\u2029]")

UNREADABLE_RECORD = "unreadable quarantine record"


def json_line(record: dict[str, object]) -> str:
    """One JSONL record: UTF-8 text, with every character that some reader takes for a line break escaped."""
    text = json.dumps(record, ensure_ascii=False)
    return _LINE_SEPARATORS.sub(lambda match: f"\\u{ord(match.group()):04x}", text) + "\n"


class QuarantineWriter:
    def __init__(self, staging: Path, source_id: str, privacy: Privacy | None = None) -> None:
        self.path = staging / "quarantine.jsonl"
        self.source_id = source_id
        self.privacy = privacy  # the lake's privacy settings: lines are stored masked, or not at all
        self.count = 0
        self.stored = 0
        self.stored_bytes = 0
        self.reasons: Counter[str] = Counter()
        self._file: TextIO | None = None

    def add(self, lines: Iterable[QuarantinedLine]) -> None:
        for line in lines:
            self.add_line(line.line_number, line.reason, line.raw)

    def add_line(self, line_number: int, reason: str, raw: bytes, length: int | None = None) -> None:
        """Count one line; store it while under the limits. ``length`` is given when ``raw`` is only its head."""
        self._count(reason, 1)
        if reason == EMPTY_LINE or self.stored >= STORED_LINES_LIMIT or self.stored_bytes >= STORED_BYTES_LIMIT:
            return
        if self.privacy is not None and self.privacy.active:
            masked = self.privacy.mask_line(raw)
            if masked is None:  # the lake stores no quarantined line: counted only
                return
            raw, reason = masked, self.privacy.mask_text(reason)
        record = self._record(line_number, reason, raw)
        if length is not None:
            record.update(length=length, truncated=True)
        self._open().write(json_line(record))
        self.stored += 1
        self.stored_bytes += len(raw)

    def add_count(self, reason: str, count: int) -> None:
        """Count lines that are not stored (blank lines taken out before parsing)."""
        if count:
            self._count(reason, count)

    def add_counts(self, kinds: Mapping[str, int]) -> None:
        """Count lines that are not stored, by kind of reason (the parser's ``unrecorded``)."""
        for kind, count in kinds.items():
            self.add_count(kind, count)

    def room(self) -> int:
        """Quarantined lines this writer would still store: the first ones need passing as lines, the others
        only counting (``add_counts``)."""
        return 0 if self.stored_bytes >= STORED_BYTES_LIMIT else STORED_LINES_LIMIT - self.stored

    def _count(self, reason: str, count: int) -> None:
        kind = reason_kind(reason)
        if kind not in self.reasons and len(self.reasons) >= REASON_KINDS_LIMIT:
            kind = OTHER_REASONS
        self.reasons[kind] += count
        self.count += count

    def _open(self) -> TextIO:
        if self._file is None:
            self._file = self.path.open("w", encoding="utf-8")
        return self._file

    def _record(self, line_number: int, reason: str, raw: bytes) -> dict[str, object]:
        record: dict[str, object] = {"source": self.source_id, "line_number": line_number, "reason": reason}
        try:
            record["raw"] = raw.decode("utf-8")
        except UnicodeDecodeError:  # readable approximation plus the exact bytes
            record["raw"] = raw.decode("utf-8", errors="backslashreplace")
            record["raw_base64"] = base64.b64encode(raw).decode("ascii")
        return record

    def summary(self) -> dict[str, object]:
        """The counts; reasons by count, then by name (not by when they were counted: the native engine counts
        junk after the lines it passes on, so an object converted alone and in a batch count in other orders)."""
        reasons = dict(sorted(self.reasons.items(), key=lambda item: (-item[1], item[0])))
        return {"quarantined": self.count, "stored": self.stored, "reasons": reasons}

    def close(self) -> Path | None:
        """Write the summary record and close; the staged file, or None when no line was quarantined."""
        if self.count == 0:
            return None
        handle = self._open()  # opened here when every quarantined line was a counted, unstored blank line
        handle.write(json_line({"source": self.source_id, "summary": self.summary()}))
        handle.close()
        self._file = None
        return self.path

    def abort(self) -> None:
        """Close without the summary (the conversion failed; the staged file is discarded)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def reason_counts(content: bytes) -> dict[str, Counter[str]]:
    """Quarantined lines by kind of reason, per source, of one quarantine file (what replay and status read).

    A file ends with a summary record holding exact counts (the stored lines are capped, so counting them would
    undercount); a file without one (written before the cap) is counted line by line. Records that are not JSON
    objects with a ``source`` are counted as "unreadable quarantine record" of source "".
    """
    counted: dict[str, Counter[str]] = {}
    summarised: dict[str, Counter[str]] = {}
    for line in content.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            source_id = str(record["source"])
        except (ValueError, TypeError, KeyError):
            counted.setdefault("", Counter())[UNREADABLE_RECORD] += 1
            continue
        summary = record.get("summary")
        if isinstance(summary, dict) and isinstance(summary.get("reasons"), dict):
            reasons = summary["reasons"]
            summarised[source_id] = Counter({str(r): n for r, n in reasons.items() if isinstance(n, int)})
        else:
            counted.setdefault(source_id, Counter())[reason_kind(str(record.get("reason", "unknown")))] += 1
    return {**counted, **summarised}
