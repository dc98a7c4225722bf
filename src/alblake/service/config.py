"""Where the functions' lake and catalog are, from their environment (shared by the ingest and compaction
functions' configurations)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

from alblake.errors import ConfigError


class LakeSettings(TypedDict):
    lake_bucket: str
    glue_database: str
    lake_prefix: str
    glue_table: str


def lake_settings(env: Mapping[str, str]) -> LakeSettings:
    """LAKE_BUCKET and GLUE_DATABASE (required), LAKE_PREFIX (default none), GLUE_TABLE (default alb_logs)."""
    missing = [k for k in ("LAKE_BUCKET", "GLUE_DATABASE") if not env.get(k)]
    if missing:
        raise ConfigError(f"missing environment variable(s): {', '.join(missing)}")
    return LakeSettings(
        lake_bucket=env["LAKE_BUCKET"],
        glue_database=env["GLUE_DATABASE"],
        lake_prefix=env.get("LAKE_PREFIX", ""),
        glue_table=env.get("GLUE_TABLE") or "alb_logs",
    )
