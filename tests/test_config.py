"""The functions' configuration: one base read from the environment, one rule for minutes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from alblake.errors import ConfigError
from alblake.service.compaction import CompactConfig
from alblake.service.config import LakeConfig, minutes_setting
from alblake.service.ingest import LambdaConfig

LAKE = {"LAKE_BUCKET": "lake", "GLUE_DATABASE": "db"}


def test_the_lake_settings_are_read_once_for_every_function() -> None:
    env = {**LAKE, "LAKE_PREFIX": "/curated/", "GLUE_TABLE": ""}
    for config_class in (LakeConfig, LambdaConfig, CompactConfig):
        config = config_class.from_env(env)
        assert (config.lake_bucket, config.glue_database, config.lake_prefix) == ("lake", "db", "/curated/")
        assert config.glue_table == "alb_logs" and config.key_prefix == "curated/"
        assert isinstance(config.staging_root, Path)
        with pytest.raises(ConfigError, match=r"missing environment variable.*LAKE_BUCKET, GLUE_DATABASE"):
            config_class.from_env({})


def test_each_function_adds_its_own_settings() -> None:
    compact = CompactConfig.from_env({**LAKE, "COMPACT_OLDER_THAN_MINUTES": "30", "COMPACT_GRACE_MINUTES": ""})
    assert (compact.older_than, compact.grace) == (timedelta(minutes=30), timedelta(minutes=60))
    ingest = LambdaConfig.from_env({**LAKE, "QUICKSIGHT_DATASET_ID": "alb", "QUICKSIGHT_MIN_REFRESH_MINUTES": "50"})
    assert (ingest.quicksight_dataset_id, ingest.quicksight_min_interval) == ("alb", timedelta(minutes=50))


@pytest.mark.parametrize("raw", ["soon", "-1", "inf", "-inf", "nan"])
def test_minutes_are_finite_and_not_negative_whichever_setting(raw: str) -> None:
    assert minutes_setting({"X": "2.5"}, "X", 7) == 2.5
    assert minutes_setting({"X": ""}, "X", 7) == minutes_setting({}, "X", 7) == 7
    with pytest.raises(ConfigError, match=r"^X is not a"):
        minutes_setting({"X": raw}, "X", 7)
    with pytest.raises(ConfigError, match="COMPACT_GRACE_MINUTES"):
        CompactConfig.from_env({**LAKE, "COMPACT_GRACE_MINUTES": raw})
