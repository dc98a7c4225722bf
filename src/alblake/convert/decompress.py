"""Read a log object as a stream of blocks of whole lines, decompressing gzip on the fly.

A line longer than ``MAX_LINE_BYTES`` (no ALB line comes close) is never held: it becomes a ``LongLine`` item
(length and first bytes) in its place, wherever it sits, and the lines around it are kept. A UTF-8 byte order
mark at the start of the object's text (editors and some copy tools write one) is not part of its first line.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from alblake.errors import CorruptInputError, EmptyInputError
from alblake.parse import MAX_LINE_BYTES

try:  # ISA-L inflates ~2-3x faster than zlib; same API and error type family.
    from isal import isal_zlib as zlib_impl
except ImportError:  # pragma: no cover - exercised only where isal has no wheel
    import zlib as zlib_impl  # type: ignore[no-redef]

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
READ_SIZE = 1 << 22  # compressed bytes per read (ALB logs inflate ~8-15x: about one block of text)
BLOCK_SIZE = 1 << 23  # ~8 MiB of text per parsed block: bounded memory, amortised per-block overhead
# Text per inflate call: bounds memory whatever the compression ratio (a gzip bomb inflates block by block).
INFLATE_LIMIT = BLOCK_SIZE
LONG_LINE_SAMPLE_BYTES = 4096  # what is kept of a line longer than MAX_LINE_BYTES


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


_DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (zlib_impl.error,)  # type: ignore[assignment]  # isal stub


class _Decompressor(Protocol):
    eof: bool
    unused_data: bytes

    unconsumed_tail: bytes

    def decompress(self, data: bytes, max_length: int = 0, /) -> bytes: ...


def _gzip_text(head: bytes, source: Readable) -> Iterator[bytes]:
    """Inflate a (possibly multi-member) gzip stream; raises CorruptInputError when corrupt or truncated."""
    decompressor: _Decompressor = zlib_impl.decompressobj(wbits=31)
    pending = head
    while True:
        if not pending:
            pending = source.read(READ_SIZE)
            if not pending:
                break
        try:
            text = decompressor.decompress(pending, INFLATE_LIMIT)
        except _DECOMPRESS_ERRORS as exc:
            raise CorruptInputError(f"not a valid gzip stream: {exc}") from None
        pending = decompressor.unconsumed_tail
        if text:
            yield text
        if decompressor.eof:
            pending = decompressor.unused_data
            if not pending:
                pending = source.read(READ_SIZE)
                if not pending:
                    return
            if pending[:2] != GZIP_MAGIC:
                if pending.strip(b"\x00"):
                    raise CorruptInputError("trailing garbage after the gzip stream")
                return
            decompressor = zlib_impl.decompressobj(wbits=31)
    if not decompressor.eof:
        raise CorruptInputError("truncated gzip stream (unexpected end of data)")


def _plain_text(head: bytes, source: Readable) -> Iterator[bytes]:
    if head:
        yield head
    while chunk := source.read(BLOCK_SIZE):
        yield chunk


def iter_text_chunks(source: Readable, *, require_gzip: bool) -> Iterator[bytes]:
    """Decompressed text of ``source`` in chunks, without a leading byte order mark. Gzip is recognised by its
    magic bytes."""
    head = source.read(READ_SIZE)
    if head[:2] == GZIP_MAGIC:
        return _without_leading_bom(_gzip_text(head, source))
    if require_gzip:
        if not head:
            raise EmptyInputError("empty object: a .gz log must contain a gzip stream")
        raise CorruptInputError("not gzip: a .gz log must start with the gzip magic bytes 1f 8b")
    return _without_leading_bom(_plain_text(head, source))


def _without_leading_bom(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The text without a UTF-8 byte order mark at its very start (however the first chunks cut it). A mark
    further on is left as it is: inside the text it is a character of a line."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(UTF8_BOM) or not UTF8_BOM.startswith(head):
            break
    if head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM) :]
    if head:
        yield head
    yield from chunks


@dataclass(frozen=True)
class LongLine:
    """A line longer than ``MAX_LINE_BYTES``, cut out of the text in its place: its length and first bytes only
    (the rest is skipped as it streams by, so memory stays bounded however long the line is)."""

    length: int  # bytes, without the line end
    head: bytes  # the first LONG_LINE_SAMPLE_BYTES bytes


Block = bytes | memoryview  # whole lines, each ending with '\n'


def iter_blocks(
    chunks: Iterable[bytes], block_size: int = BLOCK_SIZE, *, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[Block | LongLine]:
    """Regroup text chunks into blocks of whole lines, each ending with '\\n' (added at EOF if missing), with
    every line longer than ``max_line_bytes`` replaced by a ``LongLine`` in its place.

    Small chunks are joined until they fill a block, cut after the last newline. A chunk that fills a block by
    itself is not copied: the line it shares with the text before it becomes a small block of its own, and
    its other whole lines are yielded as one memoryview.
    """
    splitter = _Splitter(block_size, max_line_bytes)
    for chunk in chunks:
        yield from splitter.feed(chunk)
    yield from splitter.finish()


class _Splitter:
    """State between chunks: whole lines not yet yielded, the unfinished last line, or a long line being skipped."""

    def __init__(self, block_size: int, max_line_bytes: int) -> None:
        self.block_size = block_size
        self.max_line_bytes = max_line_bytes
        self.pending: list[Block] = []  # whole lines
        self.pending_size = 0
        self.tail: list[bytes] = []  # the unfinished last line (at most max_line_bytes)
        self.tail_size = 0
        self.long: _LongLineSkip | None = None

    def feed(self, chunk: bytes) -> Iterator[Block | LongLine]:
        position: int | None = 0
        while position is not None and position < len(chunk):
            if self.long is not None:
                position = yield from self._skip_long_line(chunk, position)
                continue
            end, is_long = self._short_lines_end(chunk, position)
            if end > position:
                yield from self._add_whole_lines(chunk, position, end)
            if not is_long:
                self._add_tail(chunk[max(end, position) :])
                return
            yield from self._flush()
            start = max(end, position)  # the long line began here, or in the tail when end < position
            self.long = _LongLineSkip(self.max_line_bytes)
            for piece in self.tail:
                self.long.add(piece, 0, len(piece))
            self.tail, self.tail_size = [], 0
            position = start

    def finish(self) -> Iterator[Block | LongLine]:
        if self.long is not None:
            yield self.long.line()
            self.long = None
        if self.tail:
            self.pending.extend([*self.tail, b"\n"])
            self.tail, self.tail_size = [], 0
        yield from self._flush()

    def _short_lines_end(self, chunk: bytes, position: int) -> tuple[int, bool]:
        """Walk whole lines of at most max_line_bytes from ``position`` (inside a line begun ``tail_size``
        bytes earlier). Returns where the walk stopped - after the last line end found, or at the start of
        the line that is unfinished (negative when it began in the tail) - and whether that line is too long.

        One ``rfind`` per window of max_line_bytes: a line is too long when its window holds no line end.
        """
        line_start = position - self.tail_size
        while True:
            window_end = line_start + self.max_line_bytes + 1
            if window_end > len(chunk):
                last = chunk.rfind(b"\n", position)
                return (last + 1, False) if last >= 0 else (line_start, False)
            last = chunk.rfind(b"\n", position, window_end)
            if last < 0:
                return line_start, True
            position = line_start = last + 1

    def _add_whole_lines(self, chunk: bytes, start: int, end: int) -> Iterator[Block]:
        """Take ``chunk[start:end]``, which completes the tail and ends with a line end."""
        view = memoryview(chunk)
        incoming = len(chunk) - start  # what fills a block is judged on the whole chunk, its unfinished line too
        if self.pending_size + self.tail_size + incoming < self.block_size:
            self.pending.extend([*self.tail, view[start:end] if end - start < len(chunk) else chunk])
            self.pending_size += self.tail_size + end - start
        elif incoming < self.block_size:
            yield b"".join([*self.pending, *self.tail, view[start:end]])
            self.pending, self.pending_size = [], 0
        else:  # fills a block by itself: yield it without copying, after the line it shares with the text before
            first = chunk.find(b"\n", start) + 1 if self.tail else start
            if self.pending or self.tail:
                yield b"".join([*self.pending, *self.tail, view[start:first]])
                self.pending, self.pending_size = [], 0
            if end > first:
                yield view[first:end]
        self.tail, self.tail_size = [], 0

    def _add_tail(self, rest: bytes) -> None:
        if rest:
            self.tail.append(rest)
            self.tail_size += len(rest)

    def _flush(self) -> Iterator[Block]:
        if self.pending:
            yield b"".join(self.pending)
            self.pending, self.pending_size = [], 0

    def _skip_long_line(self, chunk: bytes, position: int) -> Generator[LongLine, None, int | None]:
        """Count the long line's bytes up to its end; returns the position after it, or None (chunk used up)."""
        assert self.long is not None
        newline = chunk.find(b"\n", position)
        self.long.add(chunk, position, len(chunk) if newline < 0 else newline)
        if newline < 0:
            return None
        yield self.long.line()
        self.long = None
        return newline + 1


class _LongLineSkip:
    def __init__(self, max_line_bytes: int) -> None:
        self.sample_bytes = min(LONG_LINE_SAMPLE_BYTES, max_line_bytes)
        self.head = bytearray()
        self.length = 0

    def add(self, text: bytes, start: int, end: int) -> None:
        room = self.sample_bytes - len(self.head)
        if room > 0:
            self.head += text[start : min(end, start + room)]
        self.length += end - start

    def line(self) -> LongLine:
        return LongLine(self.length, bytes(self.head))
