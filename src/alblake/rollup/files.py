"""The rollup's files, as readers read them: next to each visible data file, and as one dataset (DuckDB scans it).

``rollup_files`` asks the lake (``visible_files(table=...)``) when it keeps the rollup as a derived table; the
dataset gets the rollup's schema and the partition columns (``elb_name``, ``day``, ``hour``) from the Hive paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from pyarrow import fs as pafs

from alblake.lake.derived import derived_tables_of
from alblake.lake.layout import DATA_PREFIX
from alblake.ports import Lake
from alblake.rollup.table import NAME, PREFIX, SCHEMA
from alblake.schema import PARTITION_KEYS
from alblake.scope import Scope


def rollup_url(data_url: str) -> str:
    """The rollup file next to a data file (``.../alb_logs/<rest>`` -> ``.../alb_rollup_1m/<rest>``)."""
    head, sep, rest = data_url.rpartition("/" + DATA_PREFIX)
    if not sep:
        if data_url.startswith(DATA_PREFIX):
            return PREFIX + data_url[len(DATA_PREFIX) :]
        raise ValueError(f"{data_url}: not a data file of the lake")
    return f"{head}/{PREFIX}{rest}"


def rollup_files(lake: Lake) -> list[str]:
    """The rollup files readers read: the lake's list when it keeps the rollup as a derived table (``alblake.lake.
    derived``), else the sibling of every visible data file (those that exist)."""
    if any(table.name == NAME for table in derived_tables_of(lake)):
        return list(lake.visible_files(table=NAME))  # type: ignore[call-arg]
    return [rollup_url(url) for url in lake.visible_files()]


def visible_rollup(lake: Lake, scope: Scope) -> list[str]:
    """The rollup files of the view ``alb_rollup_1m`` within ``scope``: the sibling of every visible data file of
    the scope's partitions, those present (one listing of the rollup's prefix). A lake that does not keep the
    rollup shows none (``alblake triage`` then reads the curated table)."""
    if not any(table.name == NAME for table in derived_tables_of(lake)):
        return []
    keys = getattr(lake, "visible_keys", None)
    store = getattr(lake, "store", None)
    if keys is None or store is None:
        return list(lake.visible_files(table=NAME))  # type: ignore[call-arg]
    present = set(store.list_keys(PREFIX))
    siblings = (PREFIX + key[len(DATA_PREFIX) :] for key, partition in keys() if scope.accepts(partition))
    return sorted(store.url(key) for key in siblings if key in present)


def _partition_expression(path: str) -> pc.Expression:
    values: dict[str, str] = {}
    for segment in path.split("/")[:-1]:
        key, sep, value = segment.partition("=")
        if sep and key in PARTITION_KEYS:
            values[key] = unquote(value)
    expression = pc.scalar(True)
    for key in PARTITION_KEYS:
        known = values.get(key)
        expression = expression & (pc.field(key).is_null() if known is None else pc.field(key) == known)
    return expression


def rollup_dataset(files: Sequence[str]) -> ds.Dataset:
    """The rollup files as one dataset with the rollup's schema and its partition columns."""
    schema = SCHEMA
    for key in PARTITION_KEYS:
        schema = schema.append(pa.field(key, pa.string()))
    if not files:
        return ds.dataset(schema.empty_table())
    filesystem: pafs.FileSystem
    if any(f.startswith("s3://") for f in files):
        from alblake.aws.session import arrow_s3_filesystem

        filesystem, paths = arrow_s3_filesystem(), [f.removeprefix("s3://") for f in files]
    else:
        filesystem, paths = pafs.LocalFileSystem(), list(files)
    paths = _existing(filesystem, paths)
    if not paths:
        return ds.dataset(schema.empty_table())
    return ds.FileSystemDataset.from_paths(
        paths, schema=schema, format=ds.ParquetFileFormat(), filesystem=filesystem,
        partitions=[_partition_expression(p) for p in paths],
    )


def _existing(filesystem: pafs.FileSystem, paths: list[str]) -> list[str]:
    """The paths that exist, from one listing of the rollup's folder (a file missing for a visible data file
    shows as a mismatch of its partition-hour, not as an error)."""
    marker = "/" + PREFIX
    base = paths[0][: paths[0].index(marker) + len(marker) - 1] if marker in paths[0] else PREFIX.rstrip("/")
    found = filesystem.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    present = {info.path for info in found if info.type == pafs.FileType.File}
    return [p for p in paths if p in present]
