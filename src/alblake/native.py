"""ctypes binding of the native tokenizer (``_albtok.c``): a block of log lines -> Arrow columns.

The C code accepts only lines it converts exactly as the Python reference path does and declines the rest
(their indices and byte ranges are returned for the reference path). It is compiled with the package
(``setup.py``) and cross-compiled for the Lambda layer; ``available()`` is False when it was not built.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import mmap
import threading
import warnings
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


@dataclass
class Scan:
    columns: dict[str, pa.Array]  # one per output, rows = accepted lines in order
    lines: int
    declined: np.ndarray  # 0-based indices of declined lines
    declined_bounds: np.ndarray  # (n, 2) [start, end) byte offsets of declined lines, end at the '\n'


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
        self.declined = np.empty(capacity, dtype=np.int64)
        self.bounds = np.empty((capacity, 2), dtype=np.int64)
        self.counts = np.zeros(2, dtype=np.int64)  # declined, lines


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
    library.alb_scan.argtypes = arguments + [pointer] * 7
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

    def scan(self, block: bytes | memoryview) -> Scan | None:
        """Columns of the accepted lines of ``block`` (complete lines); None when the block is too large."""
        if _LIBRARY is None:
            raise RuntimeError("the native tokenizer is not built (pip install the package)")
        text = np.frombuffer(block, dtype=np.uint8)  # no copy; read-only is fine
        if not len(text) or text[-1] != 10 or len(text) > MAX_BLOCK_BYTES:
            return None
        # ALB lines are hundreds of bytes: this capacity suffices unless the block is mostly short lines.
        scan = self._scan(text, len(text) // 128 + 64)
        return scan if scan is not None else self._scan(text, int(np.count_nonzero(text == 10)) + 1)

    def _scan(self, text: np.ndarray, capacity: int) -> Scan | None:
        assert _LIBRARY is not None
        work = self._buffers(capacity, len(text) + 16)
        rows = _LIBRARY.alb_scan(
            _address(text),
            len(text),
            _address(self.kinds),
            _address(self.flags),
            len(self.kinds),
            self.min_fields,
            self.max_line_bytes,
            work.capacity,
            ctypes.addressof(work.strings),
            _address(work.value_pointers),
            _address(work.bitmap_pointers),
            _address(work.declined),
            _address(work.bounds),
            _address(work.counts),
            _address(work.counts) + work.counts.itemsize,
        )
        if rows == -2:  # more lines than capacity
            return None
        if rows < 0:
            raise ValueError("native tokenizer: invalid arguments")
        # The work buffers are reused for the next block: the arrays handed to Arrow are exact-size copies.
        columns: dict[str, pa.Array] = {}
        for index, output in enumerate(self.string_outputs):
            data = work.string_data[index][: work.strings[index].used].copy()
            buffers = [_bitmap(work.validity[index], rows), _copy(work.offsets[index], rows + 1), pa.py_buffer(data)]
            columns[output.column] = pa.Array.from_buffers(pa.string(), rows, buffers)
        for output, value, bitmap in zip(self.value_outputs, work.values, work.bitmaps, strict=True):
            buffers = [_bitmap(bitmap, rows), _copy(value, rows)]
            columns[output.column] = pa.Array.from_buffers(output.arrow_type, rows, buffers)
        declined = int(work.counts[0])
        return Scan(columns, int(work.counts[1]), work.declined[:declined].copy(), work.bounds[:declined].copy())

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
