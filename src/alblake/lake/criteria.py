"""Which rows and quarantined lines a lake's lifecycle drops (pure): those matching an erasure's criteria, and the
rows of hours the lake has expired.

``Matcher.drop`` marks rows of a table (a staged file, a batch's rows, a live file being rewritten);
``Matcher.line_matches`` says whether a quarantined line matches a criterion; ``filter_quarantine`` rewrites a
quarantine file without its matching lines, its summary counting them as erased. Digests are computed once per
distinct value (``alblake.lake.settings.value_digest``), so a criterion on client addresses costs one HMAC per
distinct address of a file; a criterion on trace ids one per row.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from alblake.convert.privacy import split_address_and_port
from alblake.convert.quarantine import json_line, reason_kind
from alblake.lake.layout import Partition
from alblake.lake.settings import Criterion, normal_value, value_digest

_TOKEN_SEPARATORS = re.compile(r"[\s\"]+")
_TIME = pa.timestamp("us", tz="UTC")


def parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


def hour_start(text: str) -> datetime:
    """The start of an hour written ``YYYY-MM-DDTHH`` (``LakePolicy.expired_before``)."""
    return datetime.fromisoformat(f"{text}:00:00+00:00")


@dataclass
class Matcher:
    """Rows to drop: matching any criterion (with the lake's key for keyed digests), or in an hour before
    ``expired_before``. ``dropped`` counts the rows ``keep`` has dropped (a rewrite's row filter)."""

    criteria: Sequence[Criterion] = ()
    key: bytes | None = None
    expired_before: datetime | None = None
    dropped: int = 0
    _sets: list[dict[str, frozenset[str]]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._sets = [{name: frozenset(values) for name, values in c.fields.items()} for c in self.criteria]

    @property
    def empty(self) -> bool:
        return not self.criteria and self.expired_before is None

    def expired(self, partition: Partition) -> bool:
        """Whether the partition-hour is before the lake's horizon."""
        start = datetime.fromisoformat(f"{partition.day}T{partition.hour}:00:00+00:00")
        return self.expired_before is not None and start < self.expired_before

    def columns(self) -> list[str]:
        """The columns ``drop`` reads."""
        names = {name for c in self.criteria for name in c.fields} | {"time"}
        return sorted(names)

    # ------------------------------------------------------------------------------------------------ rows
    def drop(self, table: pa.Table) -> np.ndarray:
        """A boolean per row: True for a row to drop."""
        dropped = np.zeros(table.num_rows, dtype=bool)
        if not table.num_rows or self.empty:
            return dropped
        times = table.column("time") if "time" in table.column_names else None
        if self.expired_before is not None and times is not None:
            dropped |= _flags(pc.less(times, pa.scalar(self.expired_before, _TIME)))
        values: dict[tuple[str, str], dict[str, list[str]]] = {}  # (field, kind) -> digest -> the values with it
        for criterion, sets in zip(self.criteria, self._sets, strict=True):
            dropped |= self._matching(table, times, criterion, sets, values)
        return dropped

    def keep(self, table: pa.Table) -> np.ndarray:
        """The rows to keep (a rewrite's ``row_filter``); counts the others in ``dropped``."""
        drop = self.drop(table)
        self.dropped += int(np.count_nonzero(drop))
        return ~drop

    def _matching(
        self,
        table: pa.Table,
        times: pa.ChunkedArray | None,
        criterion: Criterion,
        sets: dict[str, frozenset[str]],
        values: dict[tuple[str, str], dict[str, list[str]]],
    ) -> np.ndarray:
        matched = np.ones(table.num_rows, dtype=bool)
        for name, wanted in sets.items():
            if name not in table.column_names:
                return np.zeros(table.num_rows, dtype=bool)
            column = table.column(name)
            if (name, criterion.digest) not in values:  # each distinct value digested once per table
                by_digest: dict[str, list[str]] = {}
                for value in pc.unique(column).to_pylist():
                    if isinstance(value, str):
                        digest = value_digest(criterion.digest, self.key, name, normal_value(name, value))
                        by_digest.setdefault(digest, []).append(value)
                values[(name, criterion.digest)] = by_digest
            found = values[(name, criterion.digest)]
            hits = [value for digest in wanted for value in found.get(digest, ())]
            if not hits:
                return np.zeros(table.num_rows, dtype=bool)
            matched &= _flags(pc.is_in(column, value_set=pa.array(hits, pa.string())))
        for bound, compare in ((criterion.start, pc.greater_equal), (criterion.end, pc.less)):
            if bound is not None and times is not None:
                matched &= _flags(compare(times, pa.scalar(parse_time(bound), _TIME)))
        return matched

    # ----------------------------------------------------------------------------------------------- lines
    def line_matches(self, raw: str) -> bool:
        """Whether a quarantined line matches a criterion: each field of it matches some token of the line (an
        address also without its port), and the line's time (its second token), if it has one, is in range.
        Lines are not rows: a line with the value anywhere in the right form counts (erasure errs on erasing)."""
        if not self.criteria:
            return False
        tokens = [t for t in _TOKEN_SEPARATORS.split(raw) if t]
        line_time = _line_time(tokens)
        digests: dict[tuple[str, str], set[str]] = {}  # (field, kind) -> digests of the line's tokens
        for criterion, sets in zip(self.criteria, self._sets, strict=True):
            if not _in_range(line_time, criterion):
                continue
            for name, wanted in sets.items():
                if (name, criterion.digest) not in digests:
                    digests[(name, criterion.digest)] = self._token_digests(tokens, name, criterion.digest)
                if not digests[(name, criterion.digest)] & wanted:
                    break
            else:
                return True
        return False

    def _token_digests(self, tokens: Iterable[str], name: str, kind: str) -> set[str]:
        """The digests of every token of a line as a value of the field (an address also without its port)."""
        candidates = set(tokens)
        if name == "client_ip":
            candidates |= {a for a in (split_address_and_port(t)[0] for t in tokens) if a is not None}
        return {value_digest(kind, self.key, name, normal_value(name, candidate)) for candidate in candidates}


def _flags(mask: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def _line_time(tokens: list[str]) -> datetime | None:
    if len(tokens) < 2:
        return None
    try:
        return datetime.fromisoformat(tokens[1].replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _in_range(moment: datetime | None, criterion: Criterion) -> bool:
    """A line without a readable time is in every range."""
    if moment is None:
        return True
    start, end = parse_time(criterion.start), parse_time(criterion.end)
    return (start is None or moment >= start) and (end is None or moment < end)


@dataclass
class QuarantineFiltered:
    content: bytes
    erased: Counter[str]  # lines removed, by kind of reason

    @property
    def lines(self) -> int:
        return sum(self.erased.values())


def filter_quarantine(content: bytes, matcher: Matcher) -> QuarantineFiltered:
    """A quarantine file without the stored lines that match; its summary counts them as erased (quarantined,
    stored and the reason counts go down by as many, ``erased`` up), so lines = rows + quarantined + erased."""
    kept: list[bytes] = []
    erased: Counter[str] = Counter()
    summaries: list[dict[str, object]] = []
    for line in content.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            kept.append(line)
            continue
        if isinstance(record, dict) and isinstance(record.get("summary"), dict):
            summaries.append(record)
            continue
        raw = record.get("raw") if isinstance(record, dict) else None
        if isinstance(raw, str) and matcher.line_matches(raw):
            erased[reason_kind(str(record.get("reason", "unknown")))] += 1
            continue
        kept.append(line)
    if not erased:
        return QuarantineFiltered(content, erased)
    out = [line + b"\n" for line in kept]
    for record in summaries:
        out.append(json_line(_less(record, erased)).encode())
    return QuarantineFiltered(b"".join(out), erased)


def _less(record: dict[str, object], erased: Counter[str]) -> dict[str, object]:
    summary = dict(record["summary"])  # type: ignore[call-overload]
    lines = sum(erased.values())
    reasons = Counter({str(k): int(v) for k, v in dict(summary.get("reasons", {})).items()})
    reasons.subtract(erased)
    summary["reasons"] = {k: v for k, v in reasons.most_common() if v > 0}
    summary["quarantined"] = int(summary.get("quarantined", 0)) - lines
    summary["stored"] = int(summary.get("stored", 0)) - lines
    summary["erased"] = int(summary.get("erased", 0)) + lines
    return {**record, "summary": summary}
