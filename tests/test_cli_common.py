"""What the commands share: option types, the one error line, the exit statuses."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import pytest

from alblake.cli import main
from alblake.cli.common import EXIT_FAILED, EXIT_USAGE, day, exit_status, minutes, print_error
from alblake.errors import ConfigError, InputError, LakeStateError, LocationError, ServiceError


def test_days_and_minutes_are_checked_as_arguments() -> None:
    assert day("2026-03-02") == date(2026, 3, 2)
    assert minutes("0") == 0.0 and minutes("90.5") == 90.5
    for bad in ("soon", "-1", "inf", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="minutes"):
            minutes(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="YYYY-MM-DD"):
        day("yesterday")


def test_an_error_is_one_printable_line(capsys: pytest.CaptureFixture[str]) -> None:
    print_error("evil\x1b]0;title\x07.log: not\na gzip stream")
    assert capsys.readouterr().err == "error: evil\\x1b]0;title\\x07.log: not\\x0aa gzip stream\n"


def test_what_the_command_could_not_use_exits_2_anything_else_1() -> None:
    assert exit_status(LocationError("x")) == exit_status(InputError("x")) == EXIT_USAGE
    assert exit_status(ConfigError("x")) == exit_status(LakeStateError("x")) == exit_status(ServiceError("x")) == 1
    assert EXIT_FAILED == 1


def test_the_command_line_prints_an_alblake_error_once_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", str(tmp_path), "--lake", "ftp://host/lake"]) == EXIT_USAGE
    assert capsys.readouterr().err == "error: ftp://host/lake: a lake is a local directory or s3://bucket/prefix\n"
    assert main(["report", "--lake", str(tmp_path / "none")]) == EXIT_USAGE
    assert capsys.readouterr().err == f"error: lake directory {tmp_path / 'none'} does not exist\n"
