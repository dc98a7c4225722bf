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
    blocks = list(iter_blocks(chunks, block_size))
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
    assert list(iter_blocks(iter([long_but_allowed[:1000], long_but_allowed[1000:]]), block_size=10)) == [
        long_but_allowed
    ]
