"""Block regrouping and gzip streaming conserve every byte and cut only at line ends."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from alblake.convert.decompress import LONG_LINE_SAMPLE_BYTES, Block, LongLine, iter_blocks, iter_text_chunks
from alblake.parse import MAX_LINE_BYTES


def items_as_lines(items: Iterable[Block | LongLine]) -> list[tuple[str, object]]:
    """Each whole line of the blocks, and each long line as (length, head)."""
    lines: list[tuple[str, object]] = []
    for item in items:
        if isinstance(item, LongLine):
            lines.append(("long", (item.length, item.head)))
        else:
            text = bytes(item)
            assert text.endswith(b"\n")
            lines.extend(("line", line) for line in text[:-1].split(b"\n"))
    return lines


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(max_size=50).map(lambda b: b.replace(b"\n", b"")), max_size=40),
    st.integers(1, 64),
    st.integers(1, 200),
    st.booleans(),
    st.integers(1, 60),
)
def test_blocks_are_whole_lines_and_long_lines_are_cut_out_in_place(
    lines: list[bytes], chunk_size: int, block_size: int, final_newline: bool, max_line_bytes: int
) -> None:
    text = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    chunks = (text[i : i + chunk_size] for i in range(0, len(text), chunk_size))
    items = list(iter_blocks(chunks, block_size, max_line_bytes=max_line_bytes))
    if text and not text.endswith(b"\n"):
        text += b"\n"
    expected = [
        ("long", (len(line), line[:max_line_bytes])) if len(line) > max_line_bytes else ("line", line)
        for line in text.split(b"\n")[:-1]
    ]
    assert items_as_lines(items) == expected
    if max_line_bytes >= 50:  # no long line: the blocks are the text itself
        assert b"".join(bytes(item) for item in items if not isinstance(item, LongLine)) == text


def test_gzip_members_stream_in_order() -> None:
    text = b"".join(f"line {i}\n".encode() for i in range(50_000))
    data = gzip.compress(text[:1000]) + gzip.compress(text[1000:])
    assert b"".join(iter_text_chunks(io.BytesIO(data), require_gzip=True)) == text


def test_a_line_longer_than_the_limit_is_never_held_whole() -> None:
    endless = (b"x" * 65536 for _ in range(10 * MAX_LINE_BYTES // 65536))
    [item] = iter_blocks(endless, block_size=4096)
    assert item == LongLine(10 * MAX_LINE_BYTES, b"x" * LONG_LINE_SAMPLE_BYTES)


def test_the_line_length_bound_is_inclusive() -> None:
    long_but_allowed = b"y" * MAX_LINE_BYTES + b"\n"
    blocks = iter_blocks(iter([long_but_allowed[:1000], long_but_allowed[1000:]]), block_size=10)
    assert [bytes(block) for block in blocks if not isinstance(block, LongLine)] == [long_but_allowed]
    too_long = b"z" * (MAX_LINE_BYTES + 1)
    items = list(iter_blocks(iter([b"a\n" + too_long[:5], too_long[5:] + b"\nb\n"]), block_size=10))
    assert items_as_lines(items) == [
        ("line", b"a"),
        ("long", (MAX_LINE_BYTES + 1, too_long[:LONG_LINE_SAMPLE_BYTES])),
        ("line", b"b"),
    ]


def test_inflated_chunks_are_bounded_whatever_the_compression_ratio() -> None:
    from alblake.convert.decompress import INFLATE_LIMIT

    text = b"\n" * (3 * INFLATE_LIMIT + 5)  # ~1000:1, like a gzip bomb
    data = gzip.compress(text, compresslevel=1)
    sizes = [len(chunk) for chunk in iter_text_chunks(io.BytesIO(data), require_gzip=True)]
    assert sum(sizes) == len(text)
    assert max(sizes) <= INFLATE_LIMIT


def test_a_chunk_that_fills_a_block_is_passed_on_without_copying() -> None:
    chunks = [b"head\npart", b"ial\n" + b"x" * 100 + b"\nline\ntail"]
    blocks = [block for block in iter_blocks(iter(chunks), block_size=50) if not isinstance(block, LongLine)]
    assert [bytes(block) for block in blocks] == [b"head\npartial\n", b"x" * 100 + b"\nline\n", b"tail\n"]
    assert isinstance(blocks[1], memoryview) and blocks[1].obj is chunks[1]
