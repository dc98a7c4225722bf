"""ctypes binding of the native tokenizer (``_albtok.c``): a block of log lines -> Arrow columns.

The C code accepts only lines it converts exactly as the Python reference path does and declines the rest. A
declined line it knows the reference path rejects gets a rejection code (the kind of reason the reference path
gives); the others are left to the reference path. It records the lines it declined (indices, byte ranges and
codes) up to a limit of rejected ones, and only counts the later rejected lines by code, so junk costs no
Python work per line. It is compiled with the package (``setup.py``) and cross-compiled for the Lambda layer;
``available()`` is False when it was not built.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import mmap
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

LIBRARY_STEM = "_albtok"
MAX_BLOCK_BYTES = 2**31 - 17  # _albtok.c indexes blocks with int32 and needs 16 bytes of slack
KIND_STRING, KIND_TIMESTAMP, KIND_FLOAT64, KIND_INT32, KIND_INT64, KIND_ADDRESS, KIND_REQUEST = range(7)
FLAG_REQUIRED, FLAG_ELB_FORM = 1, 2  # a field that must not be NULL; 'type/name/id' form
GATHER_DECODE_ESCAPES, GATHER_TRIM_SPACES = 1, 2
MAX_FIELDS = 64  # _albtok.c's MAX_FIELDS: a rejection code is reason * MAX_FIELDS + the field it names
# _albtok.c's R_* reasons, in order: what the reference path says of a line (parse._rejection_kind names them).
REJECTION_REASONS = (
    "undecided",  # the reference path parses the line (it may be a row)
    "empty",
    "invalid utf-8",
    "carriage return",
    "too long",
    "unterminated quote",
    "stray quote",
    "no space after quote",
    "too few fields",
    "invalid value",
    "out of range",
    "missing",
    "elb form",
    "malformed address",
)
ROWS_PER_SCAN = 1 << 16  # rows of one alb_scan call, at most (its work buffers take ~200 bytes a row)
RECORDED_PER_SCAN = 1 << 15  # lines one call records, at most (each is then read by Python)

_VALUE_DTYPES: dict[pa.DataType, type[np.generic]] = {
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.float64(): np.float64,
}


@dataclass(frozen=True)
class Output:
    column: str
    arrow_type: pa.DataType
    gather_flags: int = 0  # for string columns


@dataclass(frozen=True)
class FieldSpec:
    kind: int
    flags: int
    outputs: tuple[Output, ...]  # STRING: 1 string; ADDRESS: ip string + port int32; REQUEST: 3 strings


def rejection_of(code: int) -> tuple[str, int]:
    """The reason and the field index of a rejection code."""
    return REJECTION_REASONS[code // MAX_FIELDS], code % MAX_FIELDS


@dataclass
class Scan:
    """What one alb_scan call made of consecutive lines of a block (line indices and offsets are the block's)."""

    columns: dict[str, pa.Array]  # one per output, rows = accepted lines in order
    first_line: int  # index of the first line scanned
    lines: int  # lines scanned
    row_lines: np.ndarray  # int64: the line index of each row
    recorded: np.ndarray  # int64: indices of the recorded lines (declined, in line order)
    recorded_bounds: np.ndarray  # (n, 2) [start, end) byte offsets of recorded lines, end at the '\n'
    recorded_codes: np.ndarray  # int32: rejection code of each recorded line (0, undecided: for the reference path)
    unrecorded: dict[int, int]  # rejected lines not recorded, by rejection code


class _StringColumn(ctypes.Structure):
    """``string_column_t`` of _albtok.c: where alb_scan appends one Arrow string column."""

    _fields_ = (
        ("data", ctypes.c_void_p),
        ("offsets", ctypes.c_void_p),
        ("validity", ctypes.c_void_p),
        ("used", ctypes.c_int64),
        ("flags", ctypes.c_int32),
        ("unused", ctypes.c_int32),
    )


class _LinesOut(ctypes.Structure):
    """``lines_out_t`` of _albtok.c: where alb_scan puts the lines that are not rows."""

    _fields_ = (
        ("capacity", ctypes.c_int64),
        ("rejected_limit", ctypes.c_int64),
        ("index", ctypes.c_void_p),
        ("bounds", ctypes.c_void_p),
        ("code", ctypes.c_void_p),
        ("unrecorded", ctypes.c_void_p),
        ("recorded", ctypes.c_int64),
        ("rejected", ctypes.c_int64),
        ("lines", ctypes.c_int64),
        ("consumed", ctypes.c_int64),
    )


_PRIVATE_ANONYMOUS = mmap.MAP_PRIVATE | getattr(mmap, "MAP_ANONYMOUS", getattr(mmap, "MAP_ANON", 0))


class _WorkBuffers:
    """Everything alb_scan writes to, sized for ``capacity`` lines and ``text_size`` bytes of text."""

    def __init__(
        self, capacity: int, text_size: int, gather_flags: list[int], value_dtypes: list[type[np.generic]]
    ) -> None:
        self.capacity, self.text_size = capacity, text_size
        bitmap_bytes = (capacity + 7) // 8
        # Plain anonymous mappings, not numpy's huge-page-advised arrays: a sparse column (say, always NULL)
        # touches one 4 KiB page here instead of a 2 MiB huge page, 25 columns over. Private, not mmap's
        # default shared mapping: a process forked after a parse must not write into its parent's pages.
        self.mappings = [mmap.mmap(-1, text_size, flags=_PRIVATE_ANONYMOUS) for _ in gather_flags]
        self.string_data = [np.frombuffer(mapping, dtype=np.uint8) for mapping in self.mappings]
        self.offsets = [np.empty(capacity + 1, dtype=np.int32) for _ in gather_flags]
        self.validity = [np.empty(bitmap_bytes, dtype=np.uint8) for _ in gather_flags]
        self.strings = (_StringColumn * len(gather_flags))(
            *(
                _StringColumn(_address(data), _address(offsets), _address(validity), 0, flags, 0)
                for data, offsets, validity, flags in zip(
                    self.string_data, self.offsets, self.validity, gather_flags, strict=True
                )
            )
        )
        self.values = [np.empty(capacity, dtype=dtype) for dtype in value_dtypes]
        self.bitmaps = [np.empty(bitmap_bytes, dtype=np.uint8) for _ in value_dtypes]
        self.value_pointers = np.array([_address(v) for v in self.values], dtype=np.uint64)
        self.bitmap_pointers = np.array([_address(b) for b in self.bitmaps], dtype=np.uint64)
        self.row_lines = np.empty(capacity, dtype=np.int64)
        self.recorded = np.empty(RECORDED_PER_SCAN, dtype=np.int64)
        self.bounds = np.empty((RECORDED_PER_SCAN, 2), dtype=np.int64)
        self.codes = np.empty(RECORDED_PER_SCAN, dtype=np.int32)
        self.unrecorded = np.zeros(len(REJECTION_REASONS) * MAX_FIELDS, dtype=np.int64)
        self.lines_out = _LinesOut(
            capacity=RECORDED_PER_SCAN,
            index=_address(self.recorded),
            bounds=_address(self.bounds),
            code=_address(self.codes),
            unrecorded=_address(self.unrecorded),
        )


def _copy(array: np.ndarray, length: int) -> pa.Buffer:
    return pa.py_buffer(array[:length].copy())


def _bitmap(bitmap: np.ndarray, rows: int) -> pa.Buffer:
    """The first ``rows`` bits as a new buffer, bits past the end cleared (the work buffer is reused)."""
    bits = bitmap[: (rows + 7) // 8].copy()
    if rows % 8:
        bits[-1] &= (1 << (rows % 8)) - 1
    return pa.py_buffer(bits)


def _find_library() -> Path | None:
    here = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = here / f"{LIBRARY_STEM}{suffix}"
        if candidate.exists():
            return candidate
    return None


def _load() -> ctypes.CDLL | None:
    path = _find_library()
    if path is None:
        return None
    try:
        library = ctypes.CDLL(str(path))
    except OSError as error:  # e.g. built for another architecture: parse falls back to the Arrow engine
        warnings.warn(f"alblake: cannot load {path.name} ({error}); using the slower Arrow engine", stacklevel=2)
        return None
    pointer, int64, int32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32
    library.alb_scan.restype = int64
    arguments: list[Any] = [pointer, int64, pointer, pointer, int32, int32, int32, int64]
    library.alb_scan.argtypes = arguments + [pointer] * 5
    return library


_LIBRARY = _load()


def available() -> bool:
    return _LIBRARY is not None


def _address(array: np.ndarray) -> int:
    return int(array.ctypes.data)


class Scanner:
    """Scans blocks for one field layout (built once; ``scan`` is called per block)."""

    def __init__(self, fields: list[FieldSpec], min_fields: int, max_line_bytes: int) -> None:
        self.kinds = np.array([f.kind for f in fields], dtype=np.int32)
        self.flags = np.array([f.flags for f in fields], dtype=np.int32)
        self.min_fields = min_fields
        self.max_line_bytes = max_line_bytes  # longer lines are declined
        outputs = [output for f in fields for output in f.outputs]
        self.string_outputs = [o for o in outputs if o.arrow_type == pa.string()]
        self.value_outputs = [o for o in outputs if o.arrow_type != pa.string()]
        self._local = threading.local()

    def can_scan(self, block: bytes | memoryview) -> bool:
        """Whether ``scan`` takes the block: complete lines, not empty, small enough for int32 offsets."""
        return 0 < len(block) <= MAX_BLOCK_BYTES and bytes(block[-1:]) == b"\n"

    def scan(self, block: bytes | memoryview, rejected_limit: int | None = None) -> Iterator[Scan]:
        """The block's lines, scanned in calls of at most ROWS_PER_SCAN rows and RECORDED_PER_SCAN recorded lines.

        ``rejected_limit``: rejected lines to record (in line order) before only counting them, blank lines never
        recorded; None records every declined line. Each Scan's arrays are its own (the work buffers are reused).
        """
        if _LIBRARY is None:
            raise RuntimeError("the native tokenizer is not built (pip install the package)")
        if not self.can_scan(block):
            raise ValueError("the native tokenizer takes a block of complete lines of at most 2 GiB")
        text = np.frombuffer(block, dtype=np.uint8)  # no copy; read-only is fine
        work = self._buffers(min(ROWS_PER_SCAN, len(text) // 32 + 64), len(text) + 16)
        offset = line = 0
        remaining = -1 if rejected_limit is None else rejected_limit
        while offset < len(text):
            scan = self._scan(work, text, offset, line, remaining)
            yield scan
            offset += int(work.lines_out.consumed)
            line += scan.lines
            if remaining >= 0:
                remaining = max(0, remaining - int(work.lines_out.rejected))

    def _scan(self, work: _WorkBuffers, text: np.ndarray, offset: int, first_line: int, rejected_limit: int) -> Scan:
        assert _LIBRARY is not None
        out = work.lines_out
        out.rejected_limit = rejected_limit
        work.unrecorded[:] = 0
        rows = _LIBRARY.alb_scan(
            _address(text) + offset,
            len(text) - offset,
            _address(self.kinds),
            _address(self.flags),
            len(self.kinds),
            self.min_fields,
            self.max_line_bytes,
            work.capacity,
            ctypes.addressof(work.strings),
            _address(work.value_pointers),
            _address(work.bitmap_pointers),
            _address(work.row_lines),
            ctypes.addressof(out),
        )
        if rows < 0:
            raise ValueError("native tokenizer: invalid arguments")
        # The work buffers are reused for the next call: the arrays handed on are exact-size copies.
        columns: dict[str, pa.Array] = {}
        for index, output in enumerate(self.string_outputs):
            data = work.string_data[index][: work.strings[index].used].copy()
            buffers = [_bitmap(work.validity[index], rows), _copy(work.offsets[index], rows + 1), pa.py_buffer(data)]
            columns[output.column] = pa.Array.from_buffers(pa.string(), rows, buffers)
        for output, value, bitmap in zip(self.value_outputs, work.values, work.bitmaps, strict=True):
            buffers = [_bitmap(bitmap, rows), _copy(value, rows)]
            columns[output.column] = pa.Array.from_buffers(output.arrow_type, rows, buffers)
        recorded = int(out.recorded)
        counted = np.flatnonzero(work.unrecorded)
        return Scan(
            columns,
            first_line,
            int(out.lines),
            work.row_lines[:rows] + first_line,
            work.recorded[:recorded] + first_line,
            work.bounds[:recorded] + offset,
            work.codes[:recorded].copy(),
            dict(zip(counted.tolist(), work.unrecorded[counted].tolist(), strict=True)),
        )

    def _buffers(self, capacity: int, text_size: int) -> _WorkBuffers:
        """This thread's work buffers, reallocated only when a block needs more (ctypes releases the GIL)."""
        work: _WorkBuffers | None = getattr(self._local, "work", None)
        if work is None or work.capacity < capacity or work.text_size < text_size:
            capacity = max(capacity, work.capacity if work else 0)
            text_size = max(text_size, work.text_size if work else 0)
            dtypes = [self._value_dtype(o.arrow_type) for o in self.value_outputs]
            work = _WorkBuffers(capacity, text_size, [o.gather_flags for o in self.string_outputs], dtypes)
            self._local.work = work
        return work

    @staticmethod
    def _value_dtype(arrow_type: pa.DataType) -> type[np.generic]:
        return np.int64 if pa.types.is_timestamp(arrow_type) else _VALUE_DTYPES[arrow_type]
