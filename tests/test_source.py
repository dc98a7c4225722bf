"""Block regrouping and gzip streaming conserve every byte and cut only at line ends."""

from __future__ import annotations

import gzip
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from alblake.source import iter_blocks, iter_text_chunks


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(max_size=50).map(lambda b: b.replace(b"\n", b"")), max_size=40),
    st.integers(1, 64),
    st.integers(1, 200),
    st.booleans(),
)
def test_blocks_are_whole_lines_and_conserve_bytes(
    lines: list[bytes], chunk_size: int, block_size: int, final_newline: bool
) -> None:
    text = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    chunks = (text[i : i + chunk_size] for i in range(0, len(text), chunk_size))
    blocks = [bytes(block) for block in iter_blocks(chunks, block_size)]
    assert all(block.endswith(b"\n") for block in blocks)
    joined = b"".join(blocks)
    assert joined == (text if not text or text.endswith(b"\n") else text + b"\n")


def test_gzip_members_stream_in_order() -> None:
    text = b"".join(f"line {i}\n".encode() for i in range(50_000))
    data = gzip.compress(text[:1000]) + gzip.compress(text[1000:])
    assert b"".join(iter_text_chunks(io.BytesIO(data), require_gzip=True)) == text


def test_a_stream_without_line_ends_is_rejected_with_bounded_memory() -> None:
    import pytest

    from alblake.errors import CorruptInputError
    from alblake.parse import MAX_LINE_BYTES

    endless = (b"x" * 65536 for _ in range(10 * MAX_LINE_BYTES // 65536))
    with pytest.raises(CorruptInputError, match="line is longer than"):
        list(iter_blocks(endless, block_size=4096))
    long_but_allowed = b"y" * (MAX_LINE_BYTES - 1) + b"\n"
    blocks = iter_blocks(iter([long_but_allowed[:1000], long_but_allowed[1000:]]), block_size=10)
    assert [bytes(block) for block in blocks] == [long_but_allowed]


def test_inflated_chunks_are_bounded_whatever_the_compression_ratio() -> None:
    from alblake.source import INFLATE_LIMIT

    text = b"\n" * (3 * INFLATE_LIMIT + 5)  # ~1000:1, like a gzip bomb
    data = gzip.compress(text, compresslevel=1)
    sizes = [len(chunk) for chunk in iter_text_chunks(io.BytesIO(data), require_gzip=True)]
    assert sum(sizes) == len(text)
    assert max(sizes) <= INFLATE_LIMIT


def test_a_chunk_that_fills_a_block_is_passed_on_without_copying() -> None:
    chunks = [b"head\npart", b"ial\n" + b"x" * 100 + b"\nline\ntail"]
    blocks = list(iter_blocks(iter(chunks), block_size=50))
    assert [bytes(block) for block in blocks] == [b"head\npartial\n", b"x" * 100 + b"\nline\n", b"tail\n"]
    assert isinstance(blocks[1], memoryview) and blocks[1].obj is chunks[1]
