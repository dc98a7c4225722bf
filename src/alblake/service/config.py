"""The functions' configuration, from their environment, and the deployed lake it names.

One base, ``LakeConfig`` (where the lake and its catalog are), which the ingest and compaction configurations
extend with their own settings (``settings_from_env``); one reader of minutes (``minutes_setting``: finite and
>= 0, else a ``ConfigError`` naming the variable); one function that opens the deployed lake
(``open_deployed_lake``: the S3 store, the checked Glue registrar and the lake over them).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, Self

from alblake.errors import ConfigError
from alblake.lake.derived import default_derived_tables
from alblake.lake.generational import GenerationalLake
from alblake.lake.layout import DATA_PREFIX
from alblake.s3_urls import normalise_prefix
from alblake.schema import TABLE_NAME

_log = logging.getLogger(__name__)


class WarningLogger(Protocol):
    """Where a configuration says which values it adjusted (a ``logging.Logger``, Powertools' ``Logger``)."""

    def warning(self, msg: object, *args: object) -> None: ...


@dataclass(frozen=True)
class LakeConfig:
    """Where the deployed lake and its catalog are: LAKE_BUCKET and GLUE_DATABASE (required), LAKE_PREFIX
    (default none), GLUE_TABLE (default alb_logs). Files are staged under ``staging_root`` (Lambda: /tmp)."""

    lake_bucket: str
    glue_database: str
    lake_prefix: str = ""
    glue_table: str = TABLE_NAME
    staging_root: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, logger: WarningLogger | None = None) -> Self:
        """The configuration from ``env`` (default ``os.environ``); ``logger`` is warned of every value that was
        adjusted. Raises ``ConfigError`` naming what is missing or invalid."""
        env = os.environ if env is None else env
        missing = [name for name in ("LAKE_BUCKET", "GLUE_DATABASE") if not env.get(name)]
        if missing:
            raise ConfigError(f"missing environment variable(s): {', '.join(missing)}")
        return cls(
            lake_bucket=env["LAKE_BUCKET"],
            glue_database=env["GLUE_DATABASE"],
            lake_prefix=env.get("LAKE_PREFIX", ""),
            glue_table=env.get("GLUE_TABLE") or TABLE_NAME,
            **cls.settings_from_env(env, logger or _log),
        )

    @classmethod
    def settings_from_env(cls, env: Mapping[str, str], logger: WarningLogger) -> dict[str, Any]:
        """The fields a subclass adds, read from ``env`` (the base adds none)."""
        return {}

    @property
    def key_prefix(self) -> str:
        """Where the lake's keys start in the bucket ('' or 'prefix/')."""
        return normalise_prefix(self.lake_prefix)


def parse_minutes(text: str) -> float:
    """A number of minutes, finite and >= 0; ``ValueError`` saying what is wrong otherwise."""
    try:
        minutes = float(text)
    except ValueError:
        raise ValueError(f"not a number of minutes: {text!r}") from None
    if not 0 <= minutes < math.inf:  # also NaN
        raise ValueError(f"not a finite number of minutes >= 0: {text!r}")
    return minutes


def minutes_setting(env: Mapping[str, str], name: str, default: float) -> float:
    """The minutes in environment variable ``name`` (``default`` when unset or empty), by ``parse_minutes``."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        return parse_minutes(raw)
    except ValueError as error:
        raise ConfigError(f"{name} is {error}") from None


def open_deployed_lake(
    config: LakeConfig, *, s3: Any, glue: Any, clock: Callable[[], datetime] | None = None
) -> GenerationalLake:
    """The deployed lake: an S3 store in LAKE_BUCKET under LAKE_PREFIX, whose commits and compactions point the
    Glue table's partitions. Reads the table once (cold start) and raises ``ConfigError`` if its Location is not
    where the lake writes the table's files (``s3://LAKE_BUCKET/LAKE_PREFIX + alb_logs/``): every partition would
    otherwise point at an empty prefix. Nothing is written then."""
    from alblake.aws.glue import derived_registrars, verified_registrar  # the adapters: wiring only
    from alblake.aws.s3 import S3Store

    store = S3Store(s3, config.lake_bucket, config.lake_prefix, staging_root=config.staging_root)
    registrar = verified_registrar(glue, config.glue_database, config.glue_table, store.url(DATA_PREFIX))
    derived = default_derived_tables()
    catalogs = derived_registrars(glue, config.glue_database, derived, store.url)
    return GenerationalLake(store, registrar, clock=clock, derived=derived, derived_registrars=catalogs)
