"""Convert one log object into a ``StagedObject``: one staged Parquet file per partition-hour and a quarantine
file, all in a private staging directory. Nothing is in the lake until ``Lake.commit``.

Memory stays bounded whatever the input: blocks have a bounded size, a line longer than the parser accepts
never is held whole (``decompress.LongLine``), the native engine parses a block in steps of bounded rows and
counts junk lines in C beyond those the quarantine stores (other engines get a block of very short lines in
pieces of at most ``MAX_LINES_PER_PARSE`` lines, with its blank lines counted instead of parsed), the quarantine
is streamed to disk and capped (``quarantine``), and at most ``parquet.MAX_OPEN_WRITERS`` files are open.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from alblake.convert.decompress import BLOCK_SIZE, Block, LongLine, iter_blocks, iter_text_chunks
from alblake.convert.parquet import PartitionWriters
from alblake.convert.privacy import NO_PRIVACY, Privacy
from alblake.convert.quarantine import EMPTY_LINE, QuarantineWriter
from alblake.lake.layout import Partition, unstorable_reason
from alblake.lake.staged import StagedBatch, StagedObject, StagedRows
from alblake.parse import (
    MAX_LINE_BYTES,
    ParsedBlock,
    QuarantinedLine,
    is_constant,
    parse_block,
    reason_kind,
    takes_blocks_of_any_lines,
)
from alblake.ports import DerivedTable

_ELB_CODE_SHIFT = 40  # group key = elb code << 40 | hour offset: hour offsets stay far below 2**40
MAX_LINES_PER_PARSE = 1 << 15  # the parser's memory grows with lines (~4 KB per line it parses line by line)
# An ALB object spans one or two partition-hours; each costs a file (~5 ms, and ~40 KB while converting).
MAX_PARTITIONS_PER_OBJECT = 2_000  # rows of further partitions are quarantined
LONG_LINE_REASON = f"line longer than {MAX_LINE_BYTES} bytes"  # as the parser says it
_COUNT_STEP = 1 << 20  # newlines are counted per MiB
_WINDOW_BYTES = MAX_LINE_BYTES + 1  # a block of short lines is cut into windows of whole lines this long at most
_BLANK_LINES_PARSED = 1024  # a window with more blank lines is parsed without them (a few are left to the parser)


class _CountingReader:
    """Counts bytes read from the underlying (compressed) object."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data


@dataclass(frozen=True)
class _Lines:
    """Whole lines to parse in one call, the object's line number of each, and how many blank lines were taken
    out of the text they came from (counted, not parsed)."""

    text: Block
    numbers: np.ndarray | None  # int64, one per line; None: consecutive from first_line
    blank_lines: int = 0
    first_line: int = 1  # the object's line number of the first line (when numbers is None)

    def consecutive(self) -> bool:
        numbers = self.numbers
        return numbers is None or not len(numbers) or int(numbers[-1]) - int(numbers[0]) == len(numbers) - 1

    def positions(self, line_numbers: np.ndarray) -> np.ndarray:
        """Where lines of these numbers are in the text (0 = its first line)."""
        if self.numbers is None:
            return line_numbers - self.first_line
        return np.searchsorted(self.numbers, line_numbers)


def _count_lines(block: Block) -> int:
    """Line ends in the block: a large one compared a MiB at a time into one scratch array (3x faster than one
    pass)."""
    if len(block) <= MAX_LINES_PER_PARSE:
        return bytes(block).count(b"\n")
    data = np.frombuffer(block, dtype=np.uint8)
    scratch = np.empty(min(_COUNT_STEP, len(data)), dtype=bool)
    count = 0
    for start in range(0, len(data), _COUNT_STEP):
        part = data[start : start + _COUNT_STEP]
        is_end = scratch[: len(part)]
        np.equal(part, 10, out=is_end)
        count += int(np.count_nonzero(is_end))
    return count


def _line_pieces(block: Block, first_line: int) -> Iterator[_Lines]:
    """The block in pieces of at most MAX_LINES_PER_PARSE lines.

    A block of ALB lines is one piece. A block with more lines is scanned in windows of about MAX_LINE_BYTES
    (bounded work arrays) and cut every MAX_LINES_PER_PARSE lines, without copying; blank lines (``\\n`` or
    ``\\r\\n`` alone) are taken out of the windows that have many: counted as quarantined ("empty line"), never
    parsed one by one.
    """
    line_count = _count_lines(block)
    if line_count <= MAX_LINES_PER_PARSE:
        yield _Lines(block, np.arange(first_line, first_line + line_count))
        return
    data = np.frombuffer(block, dtype=np.uint8)
    view = memoryview(block)
    piece = _PendingPiece(0, first_line)  # whole lines not yielded yet: block[piece.start:position]
    position, number = 0, first_line  # at the start of a line
    while position < len(data):
        window = data[position : position + _WINDOW_BYTES]
        ends = np.flatnonzero(window == 10)  # lines are at most MAX_LINE_BYTES long: never empty
        window = window[: int(ends[-1]) + 1]
        blank = _blank_lines(window, ends)
        if np.count_nonzero(blank) > _BLANK_LINES_PARSED:
            yield from piece.taken(view, position, piece.lines)
            yield from _without_blank_lines(window, ends, blank, number)
            piece = _PendingPiece(position + len(window), number + len(ends))
        else:
            for cut in ends[MAX_LINES_PER_PARSE - piece.lines - 1 :: MAX_LINES_PER_PARSE].tolist():
                yield from piece.taken(view, position + cut + 1, MAX_LINES_PER_PARSE)
            piece.lines = number + len(ends) - piece.first_line
        position += len(window)
        number += len(ends)
    yield from piece.taken(view, position, piece.lines)


@dataclass
class _PendingPiece:
    start: int  # offset in the block
    first_line: int
    lines: int = 0  # below MAX_LINES_PER_PARSE

    def taken(self, view: memoryview, end: int, lines: int) -> Iterator[_Lines]:
        """The ``lines`` lines from ``start`` to ``end`` as a piece (if any); the pending piece restarts at ``end``."""
        if lines:
            yield _Lines(view[self.start : end], np.arange(self.first_line, self.first_line + lines))
        self.start, self.first_line, self.lines = end, self.first_line + lines, 0


def _line_lengths(ends: np.ndarray) -> np.ndarray:
    return np.diff(ends, prepend=-1) - 1


def _blank_lines(window: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which lines are empty or a lone carriage return."""
    lengths = _line_lengths(ends)
    return np.asarray((lengths == 0) | ((lengths == 1) & (window[np.maximum(ends - 1, 0)] == 13)))


def _without_blank_lines(window: np.ndarray, ends: np.ndarray, blank: np.ndarray, first_line: int) -> Iterator[_Lines]:
    """The window's other lines in pieces (copied), the first carrying the count of blank lines."""
    keep = np.ones(len(window), dtype=bool)
    keep[ends[blank]] = False
    keep[ends[blank & (_line_lengths(ends) == 1)] - 1] = False  # the '\r' of a blank CRLF line
    text = window[keep].tobytes()
    numbers = first_line + np.flatnonzero(~blank)
    blank_lines = int(np.count_nonzero(blank))
    if not len(numbers):
        yield _Lines(b"", numbers, blank_lines)
        return
    kept_ends = np.flatnonzero(np.frombuffer(text, dtype=np.uint8) == 10)
    view = memoryview(text)
    for first in range(0, len(numbers), MAX_LINES_PER_PARSE):
        last = min(first + MAX_LINES_PER_PARSE, len(numbers)) - 1
        start = int(kept_ends[first - 1]) + 1 if first else 0
        yield _Lines(view[start : int(kept_ends[last]) + 1], numbers[first : last + 1], blank_lines if not first else 0)


def _parsed(text: Block, first_line: int, privacy: Privacy, record_limit: int | None = None) -> ParsedBlock:
    """Parse whole lines, then apply the lake's privacy settings to the rows (the one place they are applied)."""
    parsed = parse_block(text, first_line, record_limit=record_limit)
    parsed.table = privacy.apply(parsed.table)
    return parsed


def _parse(lines: _Lines, privacy: Privacy, record_limit: int | None = None) -> ParsedBlock:
    """Parse a piece; rows and quarantined lines carry the object's line numbers."""
    numbers = lines.numbers
    if numbers is None or lines.consecutive():
        first = lines.first_line if numbers is None else int(numbers[0]) if len(numbers) else 1
        return _parsed(lines.text, first, privacy, record_limit)
    parsed = _parsed(lines.text, 1, privacy, record_limit)
    parsed.quarantined = [QuarantinedLine(int(numbers[q.line_number - 1]), q.reason, q.raw) for q in parsed.quarantined]
    parsed.row_lines = numbers[parsed.row_lines - 1]
    return parsed


def _epoch_hours(hour_start: pa.Array) -> np.ndarray:
    """Hours since the epoch of each row's hour (UTC)."""
    return np.asarray(hour_start.to_numpy(zero_copy_only=False).astype("datetime64[h]").astype(np.int64))


def _partition_groups(block: ParsedBlock) -> list[tuple[Partition, np.ndarray | None]]:
    """Split a parsed block by (elb_name, hour) of the request time: each partition with its row positions
    (None: every row)."""
    if block.table.num_rows == 0:
        return []
    hours = _epoch_hours(block.hour_start)
    if is_constant(block.elb_name):
        codes, dictionary = np.zeros(len(hours), dtype=np.int64), [block.elb_name[0].as_py()]
    else:
        names = pc.dictionary_encode(block.elb_name)
        codes = names.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        dictionary = names.dictionary.to_pylist()
    keys = (codes << _ELB_CODE_SHIFT) + (hours - hours.min())
    unique_keys = np.unique(keys)
    if len(unique_keys) == 1:
        positions: list[np.ndarray | None] = [None]
    else:
        order = np.argsort(keys, kind="stable")
        boundaries = np.flatnonzero(np.diff(keys[order])) + 1
        positions = list(np.split(order, boundaries))
    groups: list[tuple[Partition, np.ndarray | None]] = []
    for rows in positions:
        first = 0 if rows is None else int(rows[0])
        hour_utc = datetime.fromtimestamp(int(hours[first]) * 3600, tz=UTC)
        groups.append((Partition.of_hour(dictionary[codes[first]], hour_utc), rows))
    return groups


def convert_stream(
    fileobj: BinaryIO,
    source_id: str,
    staging_dir: Path,
    *,
    block_size: int = BLOCK_SIZE,
    privacy: Privacy = NO_PRIVACY,
    derived: Sequence[DerivedTable] = (),
) -> StagedObject:
    """Convert one log object (``privacy``: the lake's settings; ``derived``: the lake's derived tables, whose rows
    are derived as the rows are written). Raises ``InputError`` for unreadable input, leaving nothing staged."""
    staged = StagedObject(source_id, Path(tempfile.mkdtemp(prefix="convert-", dir=staging_dir)))
    try:
        _Conversion(staged, privacy, derived).run(fileobj, block_size)
    except BaseException:
        staged.discard()
        raise
    return staged


class _Conversion:
    def __init__(self, staged: StagedObject, privacy: Privacy, derived: Sequence[DerivedTable] = ()) -> None:
        self.staged = staged
        self.privacy = privacy
        self.writers = PartitionWriters(staged.stage_dir, derived=derived)
        self.quarantine = QuarantineWriter(staged.stage_dir, staged.source_id, privacy)
        self.unstorable: dict[str, str | None] = {}  # by elb name (day and hour have a fixed width)

    def run(self, fileobj: BinaryIO, block_size: int) -> None:
        """Convert everything, then close the outputs; on any failure every file is closed before raising."""
        staged = self.staged
        reader = _CountingReader(fileobj)
        try:
            chunks = iter_text_chunks(reader, require_gzip=staged.source_id.endswith(".gz"))
            for item in iter_blocks(chunks, block_size):
                if isinstance(item, LongLine):
                    self._long_line(item)
                else:
                    self._block(item)
            staged.data = self.writers.close()
            staged.quarantine_path = self.quarantine.close()
        except BaseException:
            self.writers.abort()
            self.quarantine.abort()
            raise
        staged.rows = sum(d.rows for d in staged.data)
        _note_quarantine(staged, self.quarantine)
        staged.bytes_in = reader.count

    def _long_line(self, line: LongLine) -> None:
        self.staged.lines += 1
        self.staged.text_bytes += line.length + 1
        self.quarantine.add_line(self.staged.lines, LONG_LINE_REASON, line.head, line.length)

    def _block(self, block: Block) -> None:
        first_line = self.staged.lines + 1
        whole = takes_blocks_of_any_lines()
        for lines in [_Lines(block, None, first_line=first_line)] if whole else _line_pieces(block, first_line):
            self.quarantine.add_count(EMPTY_LINE, lines.blank_lines)
            self.staged.lines += lines.blank_lines
            if not len(lines.text):
                continue
            room = self.quarantine.room()  # lines the quarantine still stores; the parser counts the others
            parsed = _parse(lines, self.privacy, room)
            self.staged.lines += parsed.lines
            refused: list[tuple[np.ndarray | None, str]] = []
            kept: list[tuple[Partition, np.ndarray | None]] = []
            for partition, rows in _partition_groups(parsed):
                reason = self._refusal(partition, kept)
                if reason is None:
                    kept.append((partition, rows))
                else:
                    refused.append((rows, reason))
            self.writers.add(parsed.table, kept)
            self._note_time(parsed.table, kept)
            if refused:  # those rows go to quarantine as the lines they came from, in line order
                stored, counted = _lines_of_rows(lines, parsed, refused, room)
                parsed.quarantined = sorted([*parsed.quarantined, *stored], key=lambda q: q.line_number)
                self.quarantine.add_counts(counted)
            self.quarantine.add(parsed.quarantined)
            self.quarantine.add_counts(parsed.unrecorded)
        self.staged.text_bytes += len(block)

    def _refusal(self, partition: Partition, kept: list[tuple[Partition, np.ndarray | None]]) -> str | None:
        """Why rows of this partition cannot be kept, if they cannot (``kept``: partitions of this block so far)."""
        reason = self._unstorable(partition)
        known = self.writers.rows
        if reason is None and partition not in known and len(known) + len(kept) >= MAX_PARTITIONS_PER_OBJECT:
            return f"the object spans more than {MAX_PARTITIONS_PER_OBJECT} partition-hours"
        return reason

    def _unstorable(self, partition: Partition) -> str | None:
        if partition.elb_name not in self.unstorable:
            self.unstorable[partition.elb_name] = unstorable_reason(partition, self.staged.stem)
        return self.unstorable[partition.elb_name]

    def _note_time(self, table: pa.Table, kept: list[tuple[Partition, np.ndarray | None]]) -> None:
        """The latest request time of the object's rows so far (``kept``: the rows of ``table`` kept)."""
        if not kept:
            return
        times = table.column("time")
        if len(kept) > 1 or kept[0][1] is not None:
            times = times.take(pa.array(np.concatenate([np.arange(len(times)) if r is None else r for _, r in kept])))
        latest = pc.max(times).as_py()
        if self.staged.max_time is None or latest > self.staged.max_time:
            self.staged.max_time = latest


def _note_quarantine(staged: StagedObject, writer: QuarantineWriter) -> None:
    """The object's quarantine counts, from its closed quarantine writer."""
    staged.quarantined = writer.count
    staged.quarantine_stored = writer.stored
    staged.quarantine_reasons = dict(writer.reasons)


def _rows_at(table: pa.Table, positions: np.ndarray) -> pa.Table:
    """``table.take(positions)`` for ascending positions; a slice (no copy) when they are one run."""
    first, last = int(positions[0]), int(positions[-1])
    if last - first + 1 == len(positions):
        return table.slice(first, len(positions))
    return table.take(pa.array(positions))


def _lines_of_rows(
    lines: _Lines, parsed: ParsedBlock, refused: list[tuple[np.ndarray | None, str]], room: int
) -> tuple[list[QuarantinedLine], Counter[str]]:
    """The source lines of rows of ``parsed`` (each group: its row positions, None for all, and why): the first
    ``room`` of them (in line order) as lines to store, the others counted by kind of reason."""
    numbers = np.concatenate([parsed.row_lines if rows is None else parsed.row_lines[rows] for rows, _ in refused])
    reasons = np.repeat(np.arange(len(refused)), [len(parsed.row_lines if r is None else r) for r, _ in refused])
    order = np.argsort(numbers, kind="stable")
    counted = Counter[str]()
    for index, count in zip(*np.unique(reasons[order[room:]], return_counts=True), strict=True):
        counted[reason_kind(refused[int(index)][1])] += int(count)
    first = order[:room]
    if not len(first):
        return [], counted
    ends = np.flatnonzero(np.frombuffer(lines.text, dtype=np.uint8) == 10)
    stored = []
    for number, position, reason in zip(
        numbers[first].tolist(), lines.positions(numbers[first]).tolist(), reasons[first].tolist(), strict=True
    ):
        start = int(ends[position - 1]) + 1 if position else 0
        stored.append(QuarantinedLine(number, refused[reason][1], bytes(lines.text[start : int(ends[position])])))
    return stored, counted


# ------------------------------------------------------------------------------------------ small objects, batched
#
# Converting an object on its own costs ~10 ms beyond its lines (a Parquet file per partition-hour, a staging
# directory, a parse call): for objects of a few hundred lines that is most of the time. A batch parses the text of
# many small objects in one call and keeps their rows in memory by partition, each row with its object
# (``StagedBatch``); ``Lake.commit_batch`` then writes one file per partition for all of them. An object is taken
# into a batch only when the result is exactly what converting it alone gives: every other object (more text than
# ``SMALL_TEXT_BYTES`` or one block, more lines than one parse call takes, a line longer than the parser accepts,
# rows the lake cannot store or too many partition-hours) is left to be converted on its own.

SMALL_TEXT_BYTES = 4 << 20  # text of an object converted in a batch, at most (reading stops within 16 MiB)
BATCH_TEXT_BYTES = 64 << 20  # text a batch holds in memory, at most; objects after that are converted alone

OpenStream = Callable[[], BinaryIO]


@dataclass
class ConvertedBatch:
    """What ``convert_batch`` did with each input (by position): converted into ``batch`` (``batch.objects[i]`` is
    input ``converted[i]``), left to be converted on its own, or failed (the error, as converting alone raises it)."""

    batch: StagedBatch
    converted: list[int] = field(default_factory=list)
    alone: list[int] = field(default_factory=list)
    failed: dict[int, Exception] = field(default_factory=dict)


@dataclass
class _Member:
    position: int
    staged: StagedObject
    text: Block
    quarantine: QuarantineWriter | None = None


def convert_batch(
    inputs: Sequence[tuple[OpenStream, str]], staging_dir: Path, *, privacy: Privacy = NO_PRIVACY
) -> ConvertedBatch:
    """Convert small objects together: ``inputs`` are (open the object, source id); ``privacy``: the lake's
    settings. Nothing is in the lake until ``Lake.commit_batch``; the caller discards the batch afterwards."""
    batch = StagedBatch(Path(tempfile.mkdtemp(prefix="batch-", dir=staging_dir)))
    converter = _BatchConverter(ConvertedBatch(batch), privacy)
    try:
        for position, (open_stream, source_id) in enumerate(inputs):
            converter.add(position, open_stream, source_id)
        converter.finish()
    except BaseException:
        converter.abort()
        batch.discard()
        raise
    return converter.result


def _close_quarantine(member: _Member) -> None:
    writer = member.quarantine
    if writer is not None:
        member.staged.quarantine_path = writer.close()
        _note_quarantine(member.staged, writer)
        member.quarantine = None


def _small_text(reader: _CountingReader, require_gzip: bool) -> Block | None:
    """The whole text of a small object (one block of whole lines), or None when it is not small."""
    items = iter_blocks(iter_text_chunks(reader, require_gzip=require_gzip), SMALL_TEXT_BYTES)
    first = next(items, None)
    if first is None:
        return b""
    if isinstance(first, LongLine) or len(first) > SMALL_TEXT_BYTES or next(items, None) is not None:
        return None
    return first


class _BatchConverter:
    def __init__(self, result: ConvertedBatch, privacy: Privacy) -> None:
        self.result = result
        self.privacy = privacy
        self.pending: list[_Member] = []
        self.pending_lines = 0
        self.pending_bytes = 0
        self.text_bytes = 0
        self.tables: dict[Partition, list[pa.Table]] = {}
        self.lineages: dict[Partition, list[np.ndarray]] = {}  # per row: index into result.batch.objects
        self.members: list[_Member] = []  # converted, in batch order
        self.source_ids: set[str] = set()
        self.quarantines: list[QuarantineWriter] = []  # every one opened (closed ones abort as a no-op)

    def add(self, position: int, open_stream: OpenStream, source_id: str) -> None:
        if self.text_bytes >= BATCH_TEXT_BYTES or source_id in self.source_ids:
            self.result.alone.append(position)  # a repeated source id goes after the batch, as after it in order
            return
        self.source_ids.add(source_id)
        staged = StagedObject(source_id, self.result.batch.stage_dir)
        try:
            with open_stream() as stream:
                reader = _CountingReader(stream)
                text = _small_text(reader, require_gzip=source_id.endswith(".gz"))
        except Exception as error:  # as converting it alone would fail: the caller reports it
            self.result.failed[position] = error
            return
        lines = 0 if text is None else _count_lines(text)
        if text is None or lines > MAX_LINES_PER_PARSE:
            self.result.alone.append(position)
            return
        staged.bytes_in, staged.text_bytes, staged.lines = reader.count, len(text), lines
        self.text_bytes += len(text)
        if self.pending_lines + lines > MAX_LINES_PER_PARSE or self.pending_bytes + len(text) > SMALL_TEXT_BYTES:
            self._parse_pending()
        self.pending.append(_Member(position, staged, text))
        self.pending_lines += lines
        self.pending_bytes += len(text)

    def abort(self) -> None:
        """Close every quarantine file still open (the conversion failed)."""
        for writer in self.quarantines:
            writer.abort()

    def finish(self) -> None:
        self._parse_pending()
        batch = self.result.batch
        for member in self.members:
            batch.objects.append(member.staged)
            self.result.converted.append(member.position)
        for partition in sorted(self.tables):
            lineage = np.concatenate(self.lineages[partition])
            present = np.unique(lineage)
            counts = np.bincount(lineage)
            for index in present.tolist():
                batch.objects[index].batched_rows[partition] = int(counts[index])
            batch.rows.append(
                StagedRows(
                    partition,
                    pa.concat_tables(self.tables[partition]),
                    [batch.objects[index].stem for index in present.tolist()],
                    np.searchsorted(present, lineage).astype(np.int32),
                )
            )
        for staged in batch.objects:
            staged.rows = sum(staged.batched_rows.values())

    def _parse_pending(self) -> None:
        """Parse the pending members' text in one call; take their rows and quarantined lines (members whose
        conversion alone would refuse rows go alone instead)."""
        members, self.pending = self.pending, []
        self.pending_lines = self.pending_bytes = 0
        if not members:
            return
        counts = np.array([m.staged.lines for m in members], dtype=np.int64)
        starts = 1 + np.concatenate(([0], np.cumsum(counts)[:-1]))  # each member's first line in the joined text
        parsed = _parsed(b"".join(bytes(m.text) for m in members), 1, self.privacy)
        quarantined = np.array([q.line_number for q in parsed.quarantined], dtype=np.int64)
        row_lines = np.setdiff1d(np.arange(1, int(counts.sum()) + 1), quarantined, assume_unique=True)
        row_member = np.searchsorted(starts, row_lines, side="right") - 1  # non-decreasing: members are contiguous
        groups = _partition_groups(parsed)
        alone = self._members_alone(members, groups, row_member)
        self._quarantine_lines(members, parsed.quarantined, starts, alone)
        first_index = len(self.members)
        batch_index = self._take_members(members, alone)
        self._add_rows(parsed.table, groups, batch_index[row_member])
        self._note_times(parsed.table, row_member, batch_index, first_index)

    def _quarantine_lines(
        self, members: list[_Member], lines: list[QuarantinedLine], starts: np.ndarray, alone: set[int]
    ) -> None:
        """Each quarantined line to its member's quarantine, numbered as in its object."""
        owners = (np.searchsorted(starts, [q.line_number for q in lines], side="right") - 1).tolist()
        for line, owner in zip(lines, owners, strict=True):
            if owner not in alone:
                numbered = QuarantinedLine(line.line_number - int(starts[owner]) + 1, line.reason, line.raw)
                self._quarantine_of(members[owner]).add([numbered])

    def _take_members(self, members: list[_Member], alone: set[int]) -> np.ndarray:
        """Members into the batch (or alone); for each, its index in the batch (-1: alone)."""
        batch_index = np.full(len(members), -1, dtype=np.int64)
        for member_index, member in enumerate(members):
            if member_index in alone:
                self.result.alone.append(member.position)
                self.text_bytes -= len(member.text)
            else:
                batch_index[member_index] = len(self.members)
                self.members.append(member)
                _close_quarantine(member)  # its whole text was in this call: no file stays open between calls
            member.text = b""  # parsed: the text is not needed any more
        return batch_index

    def _add_rows(self, table: pa.Table, groups: list[tuple[Partition, np.ndarray | None]], owner: np.ndarray) -> None:
        """The rows of members in the batch (``owner``: each row's batch index, -1 alone) by partition."""
        keep = owner >= 0
        for partition, rows in groups:
            positions = np.arange(len(owner)) if rows is None else rows
            positions = positions[keep[positions]]
            if len(positions):
                self.tables.setdefault(partition, []).append(_rows_at(table, positions))
                self.lineages.setdefault(partition, []).append(owner[positions])

    def _members_alone(
        self, members: list[_Member], groups: list[tuple[Partition, np.ndarray | None]], row_member: np.ndarray
    ) -> set[int]:
        """Members whose conversion alone would refuse rows (an unstorable partition, too many partitions)."""
        alone: set[int] = set()
        partitions_of: dict[int, int] = {}
        for partition, rows in groups:
            present = np.unique(row_member if rows is None else row_member[rows]).tolist()
            # stems are short (layout.unstorable_reason): only the partition decides, so any member's stem will do
            if unstorable_reason(partition, members[present[0]].staged.stem) is not None:
                alone.update(present)
            for index in present:
                partitions_of[index] = partitions_of.get(index, 0) + 1
        alone.update(index for index, count in partitions_of.items() if count > MAX_PARTITIONS_PER_OBJECT)
        return alone

    def _quarantine_of(self, member: _Member) -> QuarantineWriter:
        if member.quarantine is None:
            directory = self.result.batch.stage_dir / f"q{member.position}"
            directory.mkdir()
            member.quarantine = QuarantineWriter(directory, member.staged.source_id, self.privacy)
            self.quarantines.append(member.quarantine)
        return member.quarantine

    def _note_times(self, table: pa.Table, row_member: np.ndarray, batch_index: np.ndarray, first: int) -> None:
        """Each member's latest request time (its rows are one contiguous run of the parsed rows)."""
        if not len(row_member):
            return
        bounds = np.flatnonzero(np.diff(row_member)) + 1
        starts = np.concatenate(([0], bounds))
        ends = np.concatenate((bounds, [len(row_member)]))
        times = table.column("time")
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            index = int(batch_index[row_member[start]])
            if index >= first:
                self.members[index].staged.max_time = pc.max(times.slice(start, end - start)).as_py()
