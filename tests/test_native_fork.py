"""The native tokenizer's reused work buffers are private to a process: a child forked after a parse must not
write into its parent's buffers (a shared mapping let parallel ingest garble strings)."""

from __future__ import annotations

import os

import pytest

from alblake import native, parse
from tests.parse_helpers import DOC_LINE


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_parsing_does_not_touch_the_parents_work_buffers() -> None:
    if not native.available():
        pytest.fail("the native tokenizer is not built: pip install -e . compiles it")
    parent_block = ((DOC_LINE + "\n") * 50).encode()
    child_block = ((DOC_LINE.replace("curl/7.46.0", "zzzz/9.99.9").replace("GET ", "PUT ") + "\n") * 50).encode()
    scanner = parse._SCANNER
    assert scanner is not None and list(scanner.scan(parent_block))
    work = scanner._local.work
    before = [bytes(data[:4096]) for data in work.string_data]
    pid = os.fork()
    if pid == 0:  # the child: parse something else with the inherited scanner, then leave at once
        try:
            list(scanner.scan(child_block))
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert [bytes(data[:4096]) for data in work.string_data] == before
