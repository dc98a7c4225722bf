"""Merge Parquet inputs into files sorted by ``time``, with bounded memory, recording each row's source (pure).

An input is a local Parquet file plus, per row, the stem of the source object the row came from (one stem for a
per-object file; a lineage array for a compacted file). Rows of the sources an input excludes are left out.

Memory stays bounded by bytes whatever the partition size and however wide its rows (8 KB user agents make rows
~30x wider than typical ones, so row counts alone do not bound anything):

- inputs are read one at a time, in batches of about ``INPUT_BATCH_BYTES`` (rows per batch from the bytes per
  row seen so far, first from the file's metadata), streaming pages through a ``READ_BUFFER_BYTES`` buffer;
- rows are sorted in runs of at most ``run_rows`` rows and ``RUN_BYTES``; when more than one run is needed the
  runs go to local files (record batches of at most ``chunk_rows`` rows and ``CHUNK_BYTES``);
- a vectorised k-way merge reads one batch of each run at a time and emits at most ``STEP_BYTES`` per step; it
  reads at most ``MAX_FAN_IN`` runs at once, so more runs are first merged in groups into longer runs (passes);
- output row groups hold at most ``group_rows`` rows and ``GROUP_BYTES``.

Output files are split above ``max_file_bytes`` (estimated from the inputs' bytes per row). Every output file gets
a *lineage* file: one int32 per row, the index of its source in the stem list kept in the lineage file's metadata,
so a later rewrite can drop one source's rows exactly.
"""

from __future__ import annotations

import ctypes
import functools
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from alblake.convert.parquet_format import ROW_GROUP_ROWS, parquet_writer
from alblake.errors import LakeStateError
from alblake.schema import ARROW_SCHEMA

SOURCE_COLUMN = "__source"
LINEAGE_SCHEMA = pa.schema([pa.field("source", pa.int32(), nullable=False)])
LINEAGE_METADATA_KEY = b"alblake.sources"
MAX_FILE_BYTES = 512 * 1024 * 1024
RUN_ROWS = 128 * 1024
CHUNK_ROWS = 4 * 1024
# Memory is bounded by bytes as well as rows (Arrow bytes of decoded rows). The largest holders at once: a run
# being sorted (its rows and their sorted copy: 2 x RUN_BYTES), or the k-way merge (a batch of each run it reads,
# MAX_FAN_IN x CHUNK_BYTES, a step and its sorted copy, and the output row group being filled, GROUP_BYTES).
INPUT_BATCH_BYTES = 4 * 1024 * 1024  # rows read from an input at a time
READ_BUFFER_BYTES = 1024 * 1024  # Parquet pages are read through a buffer this size, not whole column chunks
RUN_BYTES = 48 * 1024 * 1024  # rows sorted in memory before they go to a run file
CHUNK_BYTES = 2 * 1024 * 1024  # a record batch of a run file: what the k-way merge holds per run
MAX_FAN_IN = 32  # runs merged at once; more go in passes (MAX_FAN_IN x CHUNK_BYTES of batches in memory)
STEP_BYTES = 8 * 1024 * 1024  # rows emitted by one step of the k-way merge, at most (ties at its bound aside)
GROUP_BYTES = 24 * 1024 * 1024  # rows buffered for one output row group (the size ingest writes, too)
_NULL_TIME = np.iinfo(np.int64).max


RowFilter = Callable[[pa.Table], np.ndarray]  # rows of a table -> a boolean per row: keep it


class UnreadableInputError(LakeStateError, ValueError):
    """A data file that is not a Parquet file of this lake's schema (the message names it)."""


@dataclass
class MergeInput:
    name: str  # shown in errors (the lake key)
    path: Path | None  # local copy; None for rows in memory (``table``)
    stems: list[str]  # one stem (per-object file) or the lineage's stem list
    lineage: np.ndarray | None = None  # per-row index into ``stems``; None: every row is ``stems[0]``
    exclude: frozenset[str] = frozenset()  # sources whose rows in this input are left out (replaced or removed)
    table: pa.Table | None = None  # the rows, when they are in memory (a batch of small objects, just converted)
    disposable: bool = False  # a local copy the merge deletes once it has read it (room on a small disk)
    row_filter: RowFilter | None = None  # rows it keeps (an erasure drops the rows matching its criteria)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.table is None):
            raise ValueError(f"{self.name}: a merge input is a file or a table")


@dataclass
class MergedFile:
    data_path: Path
    lineage_path: Path
    rows: int
    stems: set[str] = field(default_factory=set)


@dataclass
class MergeResult:
    files: list[MergedFile] = field(default_factory=list)
    rows_by_stem: Counter[str] = field(default_factory=Counter)
    bytes_in: int = 0

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


def read_lineage(path: Path, name: str) -> tuple[list[str], np.ndarray]:
    """The stem list and per-row source indices of a lineage file."""
    try:
        table = pq.read_table(path, page_checksum_verification=True)
        stems = json.loads((table.schema.metadata or {})[LINEAGE_METADATA_KEY])
        indices = table.column("source").to_numpy()
    except (OSError, KeyError, ValueError, pa.ArrowException) as error:
        raise UnreadableInputError(f"{name}: unreadable lineage file ({error})") from None
    if not isinstance(stems, list) or (len(indices) and (indices.min() < 0 or indices.max() >= len(stems))):
        raise UnreadableInputError(f"{name}: lineage file does not match its source list")
    return [str(s) for s in stems], indices


# Arrow bytes per Parquet byte for the lake's rows (measured on sample rows: ~6-7x); sizes in-memory inputs as
# files when estimating how many rows an output file of ``max_file_bytes`` holds.
_ARROW_TO_PARQUET_BYTES = 6


def _rows_and_bytes(item: MergeInput) -> tuple[int, int]:
    """Rows of an input and its size as Parquet (estimated for a table); checks the input (opening a file, and
    its lineage against its rows)."""
    if item.table is not None:
        rows, size = item.table.num_rows, item.table.nbytes // _ARROW_TO_PARQUET_BYTES
    else:
        assert item.path is not None
        rows, size = _open(item).metadata.num_rows, item.path.stat().st_size
    if item.lineage is not None and len(item.lineage) != rows:
        raise UnreadableInputError(f"{item.name}: {rows} rows but lineage has {len(item.lineage)}")
    return rows, size


def _open(item: MergeInput) -> pq.ParquetFile:
    assert item.path is not None
    try:
        parquet = pq.ParquetFile(
            item.path,
            page_checksum_verification=True,  # never copy a damaged page
            buffer_size=READ_BUFFER_BYTES,  # pages streamed: a column chunk of wide rows is megabytes
            pre_buffer=False,  # else every column chunk of a row group is read into memory before decoding
        )
    except (OSError, pa.ArrowException) as error:
        raise UnreadableInputError(f"{item.name}: not a readable Parquet file ({error})") from None
    names = set(parquet.schema_arrow.names)
    if "time" not in names or "elb" not in names:
        raise UnreadableInputError(f"{item.name}: not a data file of this lake (no 'time'/'elb' columns)")
    return parquet


def conform_rows(batch: pa.RecordBatch, name: str) -> pa.Table:
    """The batch in the lake's schema (columns of older files that are missing become nulls)."""
    if batch.schema.equals(ARROW_SCHEMA):
        return pa.Table.from_batches([batch])
    columns = []
    for f in ARROW_SCHEMA:
        if f.name in batch.schema.names:
            column = batch.column(f.name)
            if column.type != f.type:
                try:
                    column = column.cast(f.type)
                except pa.ArrowException:
                    raise UnreadableInputError(f"{name}: column {f.name} is {column.type}, expected {f.type}") from None
            columns.append(column)
        else:
            columns.append(pa.nulls(batch.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=ARROW_SCHEMA)


def _batches(inputs: Sequence[MergeInput], stem_index: dict[str, int]) -> Iterator[pa.Table]:
    """Every row of every input whose stem is in ``stem_index``, with that index in ``SOURCE_COLUMN``."""
    for item in inputs:
        offset = 0
        local_to_global = np.array(
            [-1 if s in item.exclude else stem_index.get(s, -1) for s in item.stems], dtype=np.int32
        )
        try:
            for batch in _input_batches(item):
                table = conform_rows(batch, item.name)
                if item.lineage is None:
                    sources = np.full(table.num_rows, local_to_global[0], dtype=np.int32)
                else:
                    sources = local_to_global[item.lineage[offset : offset + table.num_rows]]
                offset += table.num_rows
                keep = sources >= 0
                if item.row_filter is not None:
                    keep &= item.row_filter(table)
                if not keep.all():
                    table, sources = table.filter(pa.array(keep)), sources[keep]
                if table.num_rows:
                    yield table.append_column(SOURCE_COLUMN, pa.array(sources, pa.int32()))
        except (OSError, pa.ArrowException) as error:
            raise UnreadableInputError(f"{item.name}: unreadable Parquet data ({error})") from None
        if item.disposable and item.path is not None:
            item.path.unlink(missing_ok=True)


def _input_batches(item: MergeInput) -> Iterator[pa.RecordBatch]:
    """The input's rows in batches of about ``INPUT_BATCH_BYTES`` (and at most ``CHUNK_ROWS`` rows)."""
    if item.table is not None:
        yield from item.table.to_batches(max_chunksize=_rows_within(INPUT_BATCH_BYTES, _row_width(item.table)))
        return
    parquet = _open(item)
    metadata = parquet.metadata
    width = _encoded_row_width(metadata)
    for group in range(metadata.num_row_groups):
        rows = _rows_within(INPUT_BATCH_BYTES, width)
        for batch in parquet.iter_batches(batch_size=rows, row_groups=[group], use_threads=False):
            # decoded rows can be far wider than encoded ones (a repeated value is stored once): the next row
            # group is read at the width seen, not the metadata's
            width = max(width, _row_width(batch))
            yield batch


def _encoded_row_width(metadata: pq.FileMetaData) -> float:
    """Bytes per row of a Parquet file's rows uncompressed (a lower bound of their width decoded)."""
    groups = [metadata.row_group(g) for g in range(metadata.num_row_groups)]
    size: float = sum(group.total_byte_size for group in groups)
    return size / max(int(metadata.num_rows), 1)


def _row_width(rows: pa.Table | pa.RecordBatch) -> float:
    return float(rows.nbytes) / max(int(rows.num_rows), 1)


def _rows_within(size: int, width: float, most: int = CHUNK_ROWS) -> int:
    """Rows of ``width`` bytes that fit in ``size`` bytes: at least one, at most ``most``."""
    return max(1, min(most, int(size / max(width, 1.0))))


def _times(table: pa.Table) -> np.ndarray:
    times = pc.fill_null(table.column("time").cast(pa.int64()), _NULL_TIME)
    return np.asarray(times.to_numpy())


def _sorted(table: pa.Table) -> pa.Table:
    order = np.argsort(_times(table), kind="stable")
    return table.combine_chunks().take(pa.array(order))  # take on many chunks would concatenate per call


class _Output:
    """Sorted rows -> data files of about ``max_rows`` rows, each with its lineage file."""

    def __init__(self, directory: Path, token: str, stems: list[str], max_rows: int, group_rows: int) -> None:
        self.directory = directory
        self.token = token
        self.metadata = {LINEAGE_METADATA_KEY: json.dumps(stems).encode()}
        self.group_rows = group_rows
        self.max_rows = max(max_rows, group_rows)
        self.result = MergeResult()
        self.stems = stems
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._buffered_bytes = 0
        self._writer: pq.ParquetWriter | None = None
        self._lineage: pq.ParquetWriter | None = None
        self._file_rows = 0

    def add(self, table: pa.Table) -> None:
        self._buffer.append(table)
        self._buffered += table.num_rows
        self._buffered_bytes += table.nbytes
        while self._buffered >= self.group_rows or (self._buffered > 1 and self._buffered_bytes >= GROUP_BYTES):
            by_bytes = self._buffered * GROUP_BYTES // max(self._buffered_bytes, 1)
            self._flush(max(1, min(self.group_rows, by_bytes, self._buffered)))

    def _flush(self, rows: int) -> None:
        combined = pa.concat_tables(self._buffer)
        group, rest = combined.slice(0, rows), combined.slice(rows)
        self._buffer = [rest] if rest.num_rows else []
        self._buffered = rest.num_rows
        self._buffered_bytes = rest.nbytes
        if self._writer is None:
            index = len(self.result.files)
            data_path = self.directory / f"c-{self.token}-{index:03d}.parquet"
            lineage_path = self.directory / f"c-{self.token}-{index:03d}.lineage.parquet"
            self._writer = parquet_writer(data_path)
            self._lineage = pq.ParquetWriter(
                lineage_path, LINEAGE_SCHEMA.with_metadata(self.metadata), write_page_checksum=True
            )
            self.result.files.append(MergedFile(data_path, lineage_path, 0))
        assert self._lineage is not None
        sources = group.column(SOURCE_COLUMN)
        self._writer.write_table(group.drop_columns([SOURCE_COLUMN]), row_group_size=max(group.num_rows, 1))
        self._lineage.write_table(pa.table({"source": sources}, schema=LINEAGE_SCHEMA.with_metadata(self.metadata)))
        counts = np.bincount(sources.to_numpy(), minlength=len(self.stems))
        for index in np.flatnonzero(counts).tolist():
            self.result.rows_by_stem[self.stems[index]] += int(counts[index])
            self.result.files[-1].stems.add(self.stems[index])
        self.result.files[-1].rows += group.num_rows
        self._file_rows += group.num_rows
        if self._file_rows >= self.max_rows:
            self._close_file()

    def _close_file(self) -> None:
        if self._writer is not None and self._lineage is not None:
            self._writer.close()
            self._lineage.close()
        self._writer = self._lineage = None
        self._file_rows = 0

    def close(self) -> MergeResult:
        if self._buffered:
            self._flush(self._buffered)
        self._close_file()
        return self.result


@contextmanager
def _system_allocator() -> Iterator[None]:
    """Allocate with the system allocator while merging: measured on a 1.2 GB partition-hour, peak RSS 320 MB
    against 394 MB with mimalloc (Arrow's default), whose caches keep the freed run buffers."""
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        _release_memory()  # what comes next (the derived siblings, the uploads) starts from a small heap
        pa.set_memory_pool(previous)


def merge_sorted(
    inputs: Sequence[MergeInput],
    out_dir: Path,
    token: str,
    *,
    run_rows: int = RUN_ROWS,
    chunk_rows: int = CHUNK_ROWS,
    max_file_bytes: int = MAX_FILE_BYTES,
    group_rows: int = ROW_GROUP_ROWS,
) -> MergeResult:
    """Merge ``inputs`` (minus the rows each excludes) into time-sorted files in ``out_dir``."""
    with _system_allocator():
        return _merge(inputs, out_dir, token, run_rows, chunk_rows, max_file_bytes, group_rows)


def _merge(
    inputs: Sequence[MergeInput],
    out_dir: Path,
    token: str,
    run_rows: int,
    chunk_rows: int,
    max_file_bytes: int,
    group_rows: int,
) -> MergeResult:
    stems = sorted({s for item in inputs for s in item.stems if s not in item.exclude})
    stem_index = {s: i for i, s in enumerate(stems)}
    sizes = [_rows_and_bytes(item) for item in inputs]  # also checks every input up front
    rows_in = sum(rows for rows, _ in sizes)
    bytes_in = sum(size for _, size in sizes)
    max_rows = int(max_file_bytes / max(bytes_in / max(rows_in, 1), 1.0))
    output = _Output(out_dir, token, stems, max_rows, group_rows)
    runs: list[Path] = []
    buffer: list[pa.Table] = []
    buffered = buffered_bytes = 0
    for table in _batches(inputs, stem_index):
        buffer.append(table)
        buffered += table.num_rows
        buffered_bytes += table.nbytes
        if buffered >= run_rows or buffered_bytes >= RUN_BYTES:
            runs.append(_write_run(out_dir / f"run-{len(runs):05d}.arrows", _sorted_slices(buffer, chunk_rows)))
            buffered = buffered_bytes = 0
            _release_memory()
    if buffer:
        if runs:
            runs.append(_write_run(out_dir / f"run-{len(runs):05d}.arrows", _sorted_slices(buffer, chunk_rows)))
        else:
            for rows in _sorted_slices(buffer, chunk_rows):
                output.add(rows)
    if runs:
        _merge_runs(runs, output, chunk_rows)
    result = output.close()
    result.bytes_in = bytes_in
    return result


def _sorted_slices(buffer: list[pa.Table], chunk_rows: int) -> Iterator[pa.Table]:
    """The buffered rows sorted by time, one slice of at most ``chunk_rows`` rows and ``CHUNK_BYTES`` at a time
    (the sorted copy is never whole); empties ``buffer``. The rows are made contiguous first: a take on many
    chunks concatenates them on every call."""
    table = pa.concat_tables(buffer).combine_chunks()
    buffer.clear()
    rows = _rows_within(CHUNK_BYTES, _row_width(table), chunk_rows)
    order = np.argsort(_times(table), kind="stable")
    for start in range(0, len(order), rows):
        yield table.take(pa.array(order[start : start + rows]))


def _write_run(path: Path, tables: Iterable[pa.Table]) -> Path:
    """Write ``tables`` (in order, one record batch each) to a run file at ``path``."""
    writer: pa.ipc.RecordBatchFileWriter | None = None
    # zstd: runs stay small on Lambda's /tmp; one thread: buffers compressed by the thread pool's threads land in
    # their own allocator arenas, which kept ~80 MB resident after the merge
    options = pa.ipc.IpcWriteOptions(compression="zstd", use_threads=False)
    with pa.OSFile(str(path), "wb") as sink:
        try:
            for table in tables:
                if writer is None:
                    writer = pa.ipc.new_file(sink, table.schema, options=options)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
    return path


def _release_memory() -> None:
    """Hand freed buffers back to the OS (the allocators keep them otherwise; peak RSS is what Lambda bills).

    The system pool's ``release_unused`` does not return glibc's freed heap pages: after merging four 300 MB
    objects of wide rows the heap still held ~100 MB free (mallinfo2), resident until the process ended and
    under the derived tables' writing that comes next. ``malloc_trim`` returns them."""
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` (Linux, as on Lambda); None where the C library has none (macOS, musl)."""
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def _run_batches(path: Path) -> Iterator[pa.Table]:
    with pa.OSFile(str(path), "rb") as source:  # read, not mapped: mapped pages would count as resident memory
        reader = pa.ipc.open_file(source, options=pa.ipc.IpcReadOptions(use_threads=False))  # see _write_run
        for i in range(reader.num_record_batches):
            yield pa.Table.from_batches([reader.get_batch(i)])


def _merge_runs(runs: list[Path], output: _Output, chunk_rows: int) -> None:
    """Merge the runs into ``output``, reading at most ``MAX_FAN_IN`` at once: with more runs, groups of
    consecutive runs are first merged into longer runs, as few as needed to leave ``MAX_FAN_IN`` runs (so most rows
    are merged once; far more runs take several passes)."""
    passes = 0
    while len(runs) > MAX_FAN_IN:
        passes += 1
        excess = len(runs) - MAX_FAN_IN  # runs to get rid of; merging n runs into one gets rid of n - 1
        merged: list[Path] = []
        start = 0
        while excess and len(runs) - start > 1:
            count = min(MAX_FAN_IN, excess + 1, len(runs) - start)
            path = runs[start].with_name(f"pass-{passes:02d}-{len(merged):05d}.arrows")
            merged.append(_write_run(path, _rechunked(_merged_steps(runs[start : start + count]), chunk_rows)))
            start, excess = start + count, excess - (count - 1)
        runs = [*merged, *runs[start:]]
    for rows in _merged_steps(runs):
        output.add(rows)


def _rechunked(tables: Iterable[pa.Table], chunk_rows: int) -> Iterator[pa.Table]:
    """The rows of ``tables`` in contiguous tables of about ``CHUNK_BYTES`` (at most ``chunk_rows`` rows)."""
    pending: list[pa.Table] = []
    rows = size = 0
    for table in tables:
        pending.append(table)
        rows, size = rows + table.num_rows, size + table.nbytes
        if rows >= chunk_rows or size >= CHUNK_BYTES:
            joined = pa.concat_tables(pending).combine_chunks()
            pending.clear()
            step = _rows_within(CHUNK_BYTES, _row_width(joined), chunk_rows)
            whole = joined.num_rows - joined.num_rows % step
            for start in range(0, whole, step):
                yield joined.slice(start, step)
            rest = joined.slice(whole)
            pending, rows, size = ([rest], rest.num_rows, rest.nbytes) if rest.num_rows else ([], 0, 0)
    if pending:
        yield pa.concat_tables(pending).combine_chunks()


@dataclass
class _Head:
    """The batch of a run the k-way merge holds: its rows not emitted yet and their times."""

    rows: pa.Table
    times: np.ndarray
    width: float  # bytes per row

    def take(self, count: int) -> tuple[pa.Table, _Head | None]:
        rest = _Head(self.rows.slice(count), self.times[count:], self.width)
        return self.rows.slice(0, count), rest if rest.rows.num_rows else None


def _next_head(reader: Iterator[pa.Table]) -> _Head | None:
    rows = next(reader, None)
    return None if rows is None else _Head(rows, _times(rows), _row_width(rows))


def _merged_steps(runs: list[Path]) -> Iterator[pa.Table]:
    """Vectorised k-way merge of sorted runs, in sorted tables: each step emits every row no later than a bound,
    the smallest last time among the runs' batches (so no row still unread is earlier), lowered so that a step
    holds about ``STEP_BYTES`` at most. Deletes each run once read."""
    readers = [_run_batches(path) for path in runs]
    heads = [_next_head(reader) for reader in readers]
    steps = 0
    while True:
        live = [head for head in heads if head is not None]
        if not live:
            break
        bound = _step_bound(live)
        taken = []
        for i, head in enumerate(heads):
            if head is None:
                continue
            count = int(np.searchsorted(head.times, bound, side="right"))
            if count:
                rows, rest = head.take(count)
                taken.append(rows)
                heads[i] = rest if rest is not None else _next_head(readers[i])
        yield _sorted(pa.concat_tables(taken))
        steps += 1
        if steps % 64 == 0:
            _release_memory()
    for path in runs:
        path.unlink(missing_ok=True)


def _step_bound(heads: Sequence[_Head]) -> int:
    """The latest time a step may emit: every run's rows up to it are in memory, and they take about
    ``STEP_BYTES`` at most (at least one row: the earliest time of all is never above the bound)."""
    bound = min(int(head.times[-1]) for head in heads)
    counts = [int(np.searchsorted(head.times, bound, side="right")) for head in heads]
    if sum(count * head.width for count, head in zip(counts, heads, strict=True)) <= STEP_BYTES:
        return bound
    times = np.concatenate([head.times[:count] for count, head in zip(counts, heads, strict=True)])
    widths = np.concatenate([np.full(count, head.width) for count, head in zip(counts, heads, strict=True)])
    order = np.argsort(times, kind="stable")
    within = int(np.searchsorted(np.cumsum(widths[order]), STEP_BYTES, side="right"))
    return int(times[order[max(within, 1) - 1]])
