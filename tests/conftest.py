from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def documented_lines() -> list[bytes]:
    """The AWS-documented example entries, copied verbatim from shared/alb-log-format.md."""
    return (DATA / "aws_documented_examples.log").read_bytes().splitlines()
