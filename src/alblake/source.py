"""Read a log object as a stream of blocks of whole lines, decompressing gzip on the fly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from alblake.errors import CorruptInputError, EmptyInputError
from alblake.parse import MAX_LINE_BYTES

try:  # ISA-L inflates ~2-3x faster than zlib; same API and error type family.
    from isal import isal_zlib as zlib_impl
except ImportError:  # pragma: no cover - exercised only where isal has no wheel
    import zlib as zlib_impl  # type: ignore[no-redef]

GZIP_MAGIC = b"\x1f\x8b"
READ_SIZE = 1 << 22  # compressed bytes per read (ALB logs inflate ~8-15x: about one block of text)
BLOCK_SIZE = 1 << 24  # ~16 MiB of text per parsed block: bounded memory, amortised per-block overhead
# Text per inflate call: bounds memory whatever the compression ratio (a gzip bomb inflates block by block).
INFLATE_LIMIT = BLOCK_SIZE


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
    """Decompressed text of ``source`` in chunks. Gzip is recognised by its magic bytes."""
    head = source.read(READ_SIZE)
    if head[:2] == GZIP_MAGIC:
        return _gzip_text(head, source)
    if require_gzip:
        if not head:
            raise EmptyInputError("empty object: a .gz log must contain a gzip stream")
        raise CorruptInputError("not gzip: a .gz log must start with the gzip magic bytes 1f 8b")
    return _plain_text(head, source)


def iter_blocks(chunks: Iterator[bytes], block_size: int = BLOCK_SIZE) -> Iterator[bytes | memoryview]:
    """Regroup text chunks into blocks of whole lines, each ending with '\\n' (added at EOF if missing).

    Small chunks are joined until they fill a block, cut after the last newline. A chunk that fills a block by
    itself is not copied: the line it shares with the text before it becomes a small block of its own, and
    its other whole lines are yielded as one memoryview.
    """
    buffered: list[bytes | memoryview] = []
    size = 0
    since_newline = 0
    for chunk in chunks:
        newline = chunk.rfind(b"\n")
        since_newline = since_newline + len(chunk) if newline < 0 else len(chunk) - newline - 1
        if since_newline > MAX_LINE_BYTES:
            raise CorruptInputError(f"a line is longer than {MAX_LINE_BYTES // 1024} KiB: not an ALB access log")
        if size + len(chunk) < block_size or newline < 0:  # not full yet, or no line ends in this chunk
            buffered.append(chunk)
            size += len(chunk)
            continue
        view = memoryview(chunk)
        if len(chunk) < block_size:
            buffered.append(view[: newline + 1])
            yield b"".join(buffered)
        else:
            start = 0
            if buffered:  # the line begun before this chunk, completed by its first line end
                start = chunk.find(b"\n") + 1
                yield b"".join([*buffered, view[:start]])
            if newline + 1 > start:
                yield view[start : newline + 1]
        rest = chunk[newline + 1 :]
        buffered, size = ([rest], len(rest)) if rest else ([], 0)
    if size:
        data = b"".join(buffered)
        yield data if data.endswith(b"\n") else data + b"\n"
