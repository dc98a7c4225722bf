from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def documented_lines() -> list[bytes]:
    """The AWS-documented example entries, copied verbatim from the AWS guide (docs/ALB_LOG_FORMAT.md)."""
    return (DATA / "aws_documented_examples.log").read_bytes().splitlines()


@pytest.fixture(scope="module", params=["native", "arrow"])
def fast_engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a parser test module once per fast engine (each must match the exact reference path)."""
    from alblake import native, parse

    if request.param == "native" and not native.available():
        pytest.fail("the native tokenizer is not built: pip install -e . compiles it")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parse, "DEFAULT_ENGINE", request.param)
        yield str(request.param)
