"""Where a command's lake, Glue database, Athena workgroup, region and profile come from: one resolution for
every command.

Precedence, for each setting on its own: a command-line flag, then the environment, then a configuration file,
then a deployed stack's outputs (``--database`` of ``query``/``sql --athena`` is ``--glue-database``).

| setting | flag | environment | alblake.toml | stack output |
|---|---|---|---|---|
| lake | ``--lake`` | ``ALBLAKE_LAKE`` | ``lake`` | ``LakeBucketName`` (as ``s3://bucket``) |
| Glue database | ``--glue-database`` | ``ALBLAKE_GLUE_DATABASE`` | ``glue_database`` | ``GlueDatabaseName`` |
| Athena workgroup | ``--workgroup`` | ``ALBLAKE_WORKGROUP`` | ``workgroup`` | ``AthenaWorkGroupName`` |
| stack | ``--stack`` | ``ALBLAKE_STACK`` | ``stack`` | |
| region | | ``AWS_REGION``, ``AWS_DEFAULT_REGION`` | ``region`` | (then the profile's region) |
| profile | | ``AWS_PROFILE`` | ``profile`` | |

The configuration file is the first of: ``ALBLAKE_CONFIG`` (a path), ``./alblake.toml``,
``$XDG_CONFIG_HOME/alblake/alblake.toml`` (``~/.config/alblake/alblake.toml``). A stack is asked for its outputs
(CloudFormation ``DescribeStacks``) only when a setting the command needs is still unset. Without any of them,
Athena uses the names the template gives a stack called ``alblake`` (samconfig.toml's ``stack_name``):
database ``alblake_alblake``, workgroup ``alblake-alblake``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alblake.errors import ConfigError, LocationError

CONFIG_NAME = "alblake.toml"
DEFAULT_STACK = "alblake"  # samconfig.toml's stack_name
KEYS = ("lake", "glue_database", "workgroup", "stack", "region", "profile")
ENVIRONMENT = {
    "lake": "ALBLAKE_LAKE",
    "glue_database": "ALBLAKE_GLUE_DATABASE",
    "workgroup": "ALBLAKE_WORKGROUP",
    "stack": "ALBLAKE_STACK",
}
LAKE_HINT = "give --lake DIR|s3://bucket/prefix, set ALBLAKE_LAKE, put lake = \"...\" in alblake.toml, or --stack NAME"


class SettingsError(ConfigError):
    """A configuration file that cannot be used, or a setting no source gives (the message says how to give it)."""


class NoLakeError(LocationError):
    """No lake named by a flag, the environment, alblake.toml or a stack."""


def database_of_stack(stack: str) -> str:
    """The Glue database the template creates for ``stack`` when its GlueDatabaseName parameter is empty."""
    return f"{stack.replace('-', '_')}_alblake"


def workgroup_of_stack(stack: str) -> str:
    """The Athena workgroup the template creates for ``stack``."""
    return f"{stack}-alblake"


def config_paths(environ: Mapping[str, str], cwd: Path) -> list[Path]:
    """Where a configuration file is looked for, in order."""
    if environ.get("ALBLAKE_CONFIG"):
        return [Path(environ["ALBLAKE_CONFIG"])]
    home = Path(environ["XDG_CONFIG_HOME"]) if environ.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return [cwd / CONFIG_NAME, home / "alblake" / CONFIG_NAME]


def read_config(environ: Mapping[str, str], cwd: Path) -> tuple[dict[str, str], Path | None]:
    """The settings of the first configuration file found, and its path (nothing found: empty, None)."""
    for path in config_paths(environ, cwd):
        if not path.is_file():
            if environ.get("ALBLAKE_CONFIG"):
                raise SettingsError(f"ALBLAKE_CONFIG names {path}, which is not a file")
            continue
        try:
            body = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise SettingsError(f"{path}: not a readable TOML file ({error})") from None
        unknown = sorted(set(body) - set(KEYS))
        if unknown:
            raise SettingsError(f"{path}: unknown setting {', '.join(unknown)} (known: {', '.join(KEYS)})")
        wrong = [key for key, value in body.items() if not isinstance(value, str) or not value]
        if wrong:
            raise SettingsError(f"{path}: {', '.join(wrong)} must be a non-empty string")
        return {key: str(value) for key, value in body.items()}, path
    return {}, None


StackReader = Callable[[str], Any]  # stack name -> alblake.aws.stack.StackOutputs


def _read_stack(name: str) -> Any:
    from alblake.aws.session import client  # boto3 only when a stack is asked
    from alblake.aws.stack import stack_outputs

    return stack_outputs(client("cloudformation"), name)


@dataclass
class Settings:
    """The resolved settings of one command; ``origin`` says where each came from (for messages)."""

    flags: dict[str, str | None]
    environ: Mapping[str, str]
    config: dict[str, str]
    config_path: Path | None
    read_stack: StackReader = _read_stack
    origin: dict[str, str] = field(default_factory=dict)
    _stack_outputs: Any = None

    def _given(self, key: str) -> str | None:
        """A setting from a flag, the environment or the configuration file, in that order; None if none."""
        flag = self.flags.get(key)
        if flag is not None:
            if not flag.strip():
                raise NoLakeError(f"--{key.replace('_', '-')} is empty" + (f": {LAKE_HINT}" if key == "lake" else ""))
            self.origin[key] = f"--{key.replace('_', '-')}"
            return flag
        variable = ENVIRONMENT.get(key)
        if variable and self.environ.get(variable):
            self.origin[key] = variable
            return self.environ[variable]
        if self.config.get(key):
            self.origin[key] = str(self.config_path)
            return self.config[key]
        return None

    @property
    def stack(self) -> str | None:
        return self._given("stack")

    def stack_outputs(self) -> Any:
        """The named stack's outputs (asked once), or None when no stack is named."""
        name = self.stack
        if name is None:
            return None
        if self._stack_outputs is None:
            self._stack_outputs = self.read_stack(name)
        return self._stack_outputs

    def _from_stack(self, key: str, attribute: str) -> str | None:
        outputs = self.stack_outputs()
        value = getattr(outputs, attribute, "") if outputs is not None else ""
        if value:
            self.origin[key] = f"stack {self.stack}"
            return str(value)
        return None

    def lake(self) -> str:
        """The lake location; ``NoLakeError`` (saying every way to give one) when none is given."""
        found = self.optional_lake()
        if found is None:
            raise NoLakeError(f"no lake: {LAKE_HINT}")
        return found

    def optional_lake(self) -> str | None:
        found = self._given("lake")
        if found is None:
            found = self._from_stack("lake", "lake")
        if found is not None and not found.strip():
            raise NoLakeError("the lake location is empty: " + LAKE_HINT)
        return found

    def glue_database(self) -> str | None:
        """The Glue database when one is given (or the stack's); None otherwise (a plain S3 lake has none)."""
        return self._given("glue_database") or self._from_stack("glue_database", "glue_database")

    def athena_database(self) -> str:
        """The Glue database Athena queries: as given, else the stack's, else the default stack's name."""
        found = self.glue_database()
        if found is None:
            self.origin["glue_database"] = f"default (stack {DEFAULT_STACK})"
            return database_of_stack(DEFAULT_STACK)
        return found

    def workgroup(self) -> str:
        found = self._given("workgroup") or self._from_stack("workgroup", "workgroup")
        if found is None:
            self.origin["workgroup"] = f"default (stack {DEFAULT_STACK})"
            return workgroup_of_stack(DEFAULT_STACK)
        return found

    def aws_environment(self) -> dict[str, str]:
        """Variables to set for boto3 from the configuration file: its region and profile, where the environment
        names none (the environment wins)."""
        extra: dict[str, str] = {}
        if self.config.get("profile") and not self.environ.get("AWS_PROFILE"):
            extra["AWS_PROFILE"] = self.config["profile"]
        if self.config.get("region") and not (self.environ.get("AWS_REGION") or self.environ.get("AWS_DEFAULT_REGION")):
            extra["AWS_REGION"] = self.config["region"]
        return extra


def resolve(
    flags: Mapping[str, str | None],
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    read_stack: StackReader | None = None,
) -> Settings:
    """The settings of a command whose flags are ``flags`` (``lake``, ``glue_database``, ``workgroup``,
    ``stack``: None when not given)."""
    environ = os.environ if environ is None else environ
    config, path = read_config(environ, cwd or Path.cwd())
    return Settings(dict(flags), environ, config, path, read_stack or _read_stack)


@contextmanager
def aws_environment(settings: Settings) -> Iterator[None]:
    """The configuration file's region and profile in ``os.environ`` while a command runs (so worker processes and
    every boto3 client see them), restored afterwards."""
    extra = settings.aws_environment()
    if not extra:
        yield
        return
    saved = {name: os.environ.get(name) for name in extra}
    os.environ.update(extra)
    _forget_aws_clients()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _forget_aws_clients()


def _forget_aws_clients() -> None:
    try:
        from alblake.aws.session import forget_clients
    except ImportError:  # no aws extras: nothing cached
        return
    forget_clients()
