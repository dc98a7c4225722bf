"""Settings (flag > environment > alblake.toml > stack, one resolution for every command), the Athena defaults a
stack creates, and help that teaches: --version, examples, workflow order, "did you mean", hidden developer
flags, help for every option."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from alblake.cli import WORKFLOW, build_parser, main
from alblake.errors import ConfigError, LocationError
from alblake.sample import write_sample_logs
from alblake.settings import (
    NoLakeError,
    SettingsError,
    aws_environment,
    database_of_stack,
    resolve,
    workgroup_of_stack,
)

STACK = SimpleNamespace(lake="s3://stack-lake", glue_database="prod_alblake", workgroup="prod-alblake")


def stack_reader(calls: list[str]) -> Any:
    def read(name: str) -> Any:
        calls.append(name)
        return STACK

    return read


def test_each_setting_comes_from_the_first_source_that_gives_it(tmp_path: Path) -> None:
    (tmp_path / "alblake.toml").write_text('lake = "from-config"\nworkgroup = "wg-config"\nstack = "prod"\n')
    calls: list[str] = []
    env = {"ALBLAKE_LAKE": "from-env", "XDG_CONFIG_HOME": str(tmp_path / "none")}
    flags: dict[str, str | None] = {"lake": "from-flag", "glue_database": None, "workgroup": None, "stack": None}

    def settings(**changed: Any) -> Any:
        return resolve({**flags, **changed.get("flags", {})}, environ=changed.get("env", env), cwd=tmp_path,
                       read_stack=stack_reader(calls))

    assert settings().lake() == "from-flag"
    assert settings(flags={"lake": None}).lake() == "from-env"
    assert settings(flags={"lake": None}, env={}).lake() == "from-config"
    assert calls == []  # no stack asked while something else gives the setting
    chosen = settings(flags={"lake": None}, env={})
    assert chosen.lake() == "from-config" and chosen.workgroup() == "wg-config"
    assert chosen.glue_database() == "prod_alblake"
    assert calls == ["prod"] and chosen.origin == {"lake": str(tmp_path / "alblake.toml"),
                                                    "workgroup": str(tmp_path / "alblake.toml"),
                                                    "stack": str(tmp_path / "alblake.toml"),
                                                    "glue_database": "stack prod"}
    (tmp_path / "alblake.toml").write_text('stack = "prod"\n')
    assert settings(flags={"lake": None}, env={}).lake() == "s3://stack-lake"


def test_no_lake_anywhere_says_every_way_to_give_one(tmp_path: Path) -> None:
    settings = resolve({"lake": None}, environ={"XDG_CONFIG_HOME": str(tmp_path)}, cwd=tmp_path)
    with pytest.raises(NoLakeError, match=r"--lake DIR.*ALBLAKE_LAKE.*alblake\.toml.*--stack NAME"):
        settings.lake()


def test_athena_defaults_are_what_the_template_names_for_a_stack(tmp_path: Path) -> None:
    template = (Path(__file__).parents[1] / "template.yaml").read_text()
    assert '!Join ["_", [!Join ["_", !Split ["-", !Ref AWS::StackName]], alblake]]' in template
    assert 'Name: !Sub "${AWS::StackName}-alblake"' in template
    assert database_of_stack("my-stack") == "my_stack_alblake"
    assert workgroup_of_stack("my-stack") == "my-stack-alblake"
    settings = resolve({}, environ={"XDG_CONFIG_HOME": str(tmp_path)}, cwd=tmp_path)
    assert settings.athena_database() == "alblake_alblake"  # samconfig.toml's stack_name is alblake
    assert settings.workgroup() == "alblake-alblake"


def test_a_broken_config_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "alblake.toml").write_text('lake = "x"\nlakee = "typo"\n')
    with pytest.raises(SettingsError, match="unknown setting lakee"):
        resolve({}, environ={}, cwd=tmp_path)
    (tmp_path / "alblake.toml").write_text("lake = \n")
    with pytest.raises(SettingsError, match="not a readable TOML file"):
        resolve({}, environ={}, cwd=tmp_path)
    with pytest.raises(SettingsError, match="ALBLAKE_CONFIG names"):
        resolve({}, environ={"ALBLAKE_CONFIG": str(tmp_path / "nope.toml")}, cwd=tmp_path)
    assert issubclass(SettingsError, ConfigError)


def test_config_region_and_profile_reach_boto3_unless_the_environment_names_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "alblake.toml").write_text('region = "eu-west-1"\nprofile = "lake"\n')
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    settings = resolve({}, cwd=tmp_path)
    with aws_environment(settings):
        assert os.environ["AWS_REGION"] == "eu-west-1" and os.environ["AWS_PROFILE"] == "lake"
    assert "AWS_REGION" not in os.environ and "AWS_PROFILE" not in os.environ
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    assert resolve({}, cwd=tmp_path).aws_environment() == {"AWS_PROFILE": "lake"}


def test_the_command_line_takes_the_lake_from_the_environment_and_the_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_sample_logs(tmp_path / "logs", files=3, lines_per_file=10, malformed_every=0)
    assert main(["ingest", str(tmp_path / "logs"), "--lake", str(tmp_path / "lake"), "--quiet"]) == 0
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("ALBLAKE_LAKE", raising=False)
    capsys.readouterr()
    assert main(["sql", "SELECT count(*) AS n FROM alb_logs", "--csv"]) == 2
    assert "error: no lake: give --lake" in capsys.readouterr().err
    (tmp_path / "alblake.toml").write_text('lake = "lake"\n')
    assert main(["sql", "SELECT count(*) AS n FROM alb_logs", "--csv"]) == 0
    assert capsys.readouterr().out == "n\n30\n"
    monkeypatch.setenv("ALBLAKE_LAKE", str(tmp_path / "nowhere"))
    assert main(["status"]) == 2
    assert "nowhere does not exist" in capsys.readouterr().err


def test_an_empty_lake_location_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_sample_logs(tmp_path / "logs", files=1, lines_per_file=5)
    for argv in (["ingest", "logs", "--lake", ""], ["status", "--lake", ""], ["query", "overview", "--lake", " "]):
        assert main(argv) == 2
        assert "empty" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs"]  # the current directory did not become a lake


def test_a_directory_that_is_not_a_lake_is_refused_the_same_way_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    messages = set()
    for argv in (["query", "overview"], ["status"], ["report", "--out", str(tmp_path / "r.html")], ["files"],
                 ["sql", "SELECT 1"], ["compact"], ["replay", "--dry-run"]):
        assert main([*argv, "--lake", str(tmp_path / "photos")]) == 2, argv
        messages.add(capsys.readouterr().err)
    (message,) = messages
    assert message == (f"error: {tmp_path / 'photos'} is not an alblake lake: a lake holds alb_logs/, manifests/ "
                       "and quarantine/ (make one with 'alblake ingest LOGS --lake LOCATION')\n")
    assert not (tmp_path / "r.html").exists()


# ------------------------------------------------------------------------------------------------------ help


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_version_and_the_workflow_order(capsys: pytest.CaptureFixture[str]) -> None:
    from alblake import __version__

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out == f"alblake {__version__}\n"
    listed = list(subcommands())
    assert listed[: len(WORKFLOW)] == [name for name in WORKFLOW if name in listed]
    assert listed[:4] == ["sample", "ingest", "status", "query"]


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_subcommand_has_examples_and_every_option_a_help_text(name: str) -> None:
    parser = subcommands()[name]
    assert parser.epilog and parser.epilog.startswith("examples:\n  alblake")
    for action in parser._actions:
        if action.dest in {"help"} or action.help == argparse.SUPPRESS:
            continue
        assert action.help, f"alblake {name} {action.option_strings or action.dest} has no help"


def test_developer_flags_are_hidden(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["schema", "--help"])
    text = capsys.readouterr().out
    assert "--write" not in text and "--check" not in text
    assert main(["schema", "--check", str(Path(__file__).parents[1])]) == 0  # still there for make generate


def test_did_you_mean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["qeury", "overview"]) == 2
    assert "unknown command 'qeury'; did you mean 'query'?" in capsys.readouterr().err
    assert main(["query", "eror_rate_by_hour", "--lake", str(tmp_path)]) == 2
    # the closest name first (the rollup's errors_by_route may follow it)
    err = capsys.readouterr().err
    assert err.startswith("error: unknown query 'eror_rate_by_hour'; did you mean 'error_rate_by_hour'")


def test_your_own_named_queries_come_after_the_built_in_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "queries"
    mine.mkdir()
    (mine / "checkout_5xx.sql").write_text(
        "-- title: 5xx on /checkout\n-- description: Server errors of the checkout route.\n-- chart: table\n"
        "SELECT count(*) AS errors FROM alb_logs WHERE elb_status_code >= 500 AND request_url LIKE '%/checkout%'\n"
    )
    (mine / "overview.sql").write_text("-- title: mine\n-- description: shadowed\n-- chart: table\nSELECT 1\n")
    monkeypatch.setenv("ALBLAKE_QUERY_DIR", str(mine))
    write_sample_logs(tmp_path / "logs", files=3, lines_per_file=50)
    assert main(["ingest", str(tmp_path / "logs"), "--lake", str(tmp_path / "lake"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["query", "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[-1].startswith("checkout_5xx") and sum(line.startswith("overview") for line in listed) == 1
    assert main(["query", "checkout_5xx", "--lake", str(tmp_path / "lake"), "--csv"]) == 0
    assert capsys.readouterr().out.startswith("errors\n")
    assert main(["query", "overview", "--lake", str(tmp_path / "lake"), "--sql"]) == 0
    assert "SELECT 1" not in capsys.readouterr().out  # the built-in query wins


def test_no_lake_error_is_a_location_error() -> None:
    assert issubclass(NoLakeError, LocationError)


def test_shell_completion_answers_with_the_commands() -> None:
    """argcomplete's protocol: the shell sets _ARGCOMPLETE and COMP_LINE and reads the candidates on fd 8."""
    import shlex
    import subprocess
    import sys

    env = {**os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": "alblake qu", "COMP_POINT": "10", "_ARGCOMPLETE_IFS": " "}
    command = f"{shlex.quote(sys.executable)} -m alblake 8>&1 9>/dev/null"
    found = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert found.stdout.split() == ["query"]
