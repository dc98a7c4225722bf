"""ctypes binding of the native tokenizer (``_albtok.c``): a block of log lines -> Arrow columns.

The C code accepts only lines it converts exactly as the Python reference path does and declines the rest
(their indices and byte ranges are returned for the reference path). It is compiled with the package
(``setup.py``) and cross-compiled for the Lambda layer; ``available()`` is False when it was not built.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

LIBRARY_STEM = "_albtok"
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
    library = ctypes.CDLL(str(path))
    pointer, int64, int32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32
    library.alb_scan.restype = int64
    arguments: list[Any] = [ctypes.c_char_p, int64, pointer, pointer, int32, int32, int64]
    library.alb_scan.argtypes = arguments + [pointer] * 7
    return library


_LIBRARY = _load()


def available() -> bool:
    return _LIBRARY is not None


def _address(array: np.ndarray) -> int:
    return int(array.ctypes.data)


class Scanner:
    """Scans blocks for one field layout (built once; ``scan`` is called per block)."""

    def __init__(self, fields: list[FieldSpec], min_fields: int) -> None:
        self.kinds = np.array([f.kind for f in fields], dtype=np.int32)
        self.flags = np.array([f.flags for f in fields], dtype=np.int32)
        self.min_fields = min_fields
        outputs = [output for f in fields for output in f.outputs]
        self.string_outputs = [o for o in outputs if o.arrow_type == pa.string()]
        self.value_outputs = [o for o in outputs if o.arrow_type != pa.string()]
        self._local = threading.local()

    def scan(self, block: bytes) -> Scan | None:
        """Columns of the accepted lines of ``block`` (complete lines); None when the block is too large."""
        if _LIBRARY is None:
            raise RuntimeError("the native tokenizer is not built (pip install the package)")
        if not block.endswith(b"\n") or len(block) >= 2**31:
            return None
        # ALB lines are hundreds of bytes: this capacity suffices unless the block is mostly short lines.
        scan = self._scan(block, len(block) // 128 + 64)
        return scan if scan is not None else self._scan(block, block.count(b"\n") + 1)

    def _scan(self, block: bytes, capacity: int) -> Scan | None:
        assert _LIBRARY is not None
        scratch = self._scratch(len(block) + 16)
        offsets = [np.empty(capacity + 1, dtype=np.int32) for _ in self.string_outputs]
        validity = [np.zeros((capacity + 7) // 8, dtype=np.uint8) for _ in self.string_outputs]
        strings = (_StringColumn * len(self.string_outputs))(
            *(
                _StringColumn(_address(data), _address(offset), _address(valid), 0, output.gather_flags, 0)
                for data, offset, valid, output in zip(scratch, offsets, validity, self.string_outputs, strict=True)
            )
        )
        values = [np.empty(capacity, dtype=self._value_dtype(o.arrow_type)) for o in self.value_outputs]
        bitmaps = [np.zeros((capacity + 7) // 8, dtype=np.uint8) for _ in self.value_outputs]
        # Arrays of pointers: held in locals so that they outlive the call.
        value_pointers = np.array([_address(v) for v in values], dtype=np.uint64)
        bitmap_pointers = np.array([_address(b) for b in bitmaps], dtype=np.uint64)
        declined = np.empty(capacity, dtype=np.int64)
        bounds = np.empty((capacity, 2), dtype=np.int64)
        counts = np.zeros(2, dtype=np.int64)  # declined, lines
        rows = _LIBRARY.alb_scan(
            block,
            len(block),
            _address(self.kinds),
            _address(self.flags),
            len(self.kinds),
            self.min_fields,
            capacity,
            ctypes.addressof(strings),
            _address(value_pointers),
            _address(bitmap_pointers),
            _address(declined),
            _address(bounds),
            _address(counts),
            _address(counts) + counts.itemsize,
        )
        if rows == -2:  # more lines than capacity
            return None
        if rows < 0:
            raise ValueError("native tokenizer: invalid arguments")
        columns: dict[str, pa.Array] = {}
        for index, output in enumerate(self.string_outputs):
            data = scratch[index][: strings[index].used].copy()  # the scratch is reused for the next block
            buffers = [pa.py_buffer(validity[index]), pa.py_buffer(offsets[index]), pa.py_buffer(data)]
            columns[output.column] = pa.Array.from_buffers(pa.string(), rows, buffers)
        for output, value, bitmap in zip(self.value_outputs, values, bitmaps, strict=True):
            buffers = [pa.py_buffer(bitmap), pa.py_buffer(value)]
            columns[output.column] = pa.Array.from_buffers(output.arrow_type, rows, buffers)
        n_declined = int(counts[0])
        return Scan(columns, int(counts[1]), declined[:n_declined], bounds[:n_declined])

    def _scratch(self, size: int) -> list[np.ndarray]:
        """Per-thread buffers the C code appends string bytes to (one per string column, grown as needed)."""
        buffers: list[np.ndarray] | None = getattr(self._local, "buffers", None)
        if buffers is None or len(buffers[0]) < size:
            buffers = [np.empty(size, dtype=np.uint8) for _ in self.string_outputs]
            self._local.buffers = buffers
        return buffers

    @staticmethod
    def _value_dtype(arrow_type: pa.DataType) -> type[np.generic]:
        return np.int64 if pa.types.is_timestamp(arrow_type) else _VALUE_DTYPES[arrow_type]
