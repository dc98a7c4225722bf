"""``alblake catalog sync`` rebuilds the Glue catalog from the lake's own state (moto_server: S3 and Glue).

The lake holds compacted hours (generation folders no crawler can find), generation-0 hours and late objects.
The catalog is then damaged as an operator might find it: partitions deleted, the table deleted, a Location
moved by hand, a partition with no data. After one sync every named query returns what it returned before, read
the two ways the lake is read: the local DuckDB reader (the lake's states) and the Athena model (every object
under each Glue partition's Location, with the partition's values). The rollup (a derived table: its partitions
follow the curated table's Locations under its own prefix) is rebuilt the same way, table and partitions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from alblake.analysis import connect, execute, get_query, list_queries, rollup_queries
from alblake.aws.session import arrow_s3_filesystem
from alblake.cli import main
from alblake.rollup.routes import DUCKDB_MACROS
from alblake.schema import (
    ARROW_SCHEMA,
    PARTITION_KEYS,
    ROLLUP_ARROW_SCHEMA,
    ROLLUP_TABLE_NAME,
    glue_table_input,
    rollup_glue_table_input,
)
from tests.integration.moto_endpoint import aws_endpoint, moto_server_url
from tests.log_objects import write_objects

__all__ = ["aws_endpoint", "moto_server_url"]  # fixtures

LAKE = "s3://lake/x"
DB = "alblake"


def partitions(glue: Any, table: str = "alb_logs") -> dict[tuple[str, ...], str]:
    found = glue.get_partitions(DatabaseName=DB, TableName=table)["Partitions"]
    return {tuple(p["Values"]): p["StorageDescriptor"]["Location"] for p in found}


def athena_dataset(glue: Any, table: str = "alb_logs", stored: pa.Schema = ARROW_SCHEMA) -> ds.Dataset:
    """What Athena reads: every Parquet object under each partition's Location, its partition columns from the
    partition's values."""
    s3: Any = boto3.client("s3")
    schema = stored
    for key in PARTITION_KEYS:
        schema = schema.append(pa.field(key, pa.string()))
    paths: list[str] = []
    expressions: list[pc.Expression] = []
    for values, location in partitions(glue, table).items():
        bucket, prefix = location.removeprefix("s3://").split("/", 1)
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/").get("Contents", []):
            if item["Key"].endswith(".parquet"):
                paths.append(f"{bucket}/{item['Key']}")
                expression = pc.scalar(True)
                for key, value in zip(PARTITION_KEYS, values, strict=True):
                    expression = expression & (pc.field(key) == value)
                expressions.append(expression)
    if not paths:
        return ds.dataset(schema.empty_table())
    return ds.FileSystemDataset.from_paths(
        paths, schema=schema, format=ds.ParquetFileFormat(), filesystem=arrow_s3_filesystem(), partitions=expressions
    )


def sorted_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return sorted((tuple(row.values()) for row in table.to_pylist()), key=repr)


def every_query(lake_or_dataset: Any) -> dict[str, list[tuple[Any, ...]]]:
    if isinstance(lake_or_dataset, ds.Dataset):
        import duckdb

        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE OR REPLACE TEMP MACRO approx_percentile(x, p) AS quantile_cont(x, p)")
        con.register("alb_logs_files", lake_or_dataset)
        con.execute("CREATE TEMP VIEW alb_logs AS SELECT * FROM alb_logs_files")
    else:
        con = connect(lake_or_dataset)
    try:
        return {query.name: sorted_rows(execute(con, get_query(query.name))) for query in list_queries()}
    finally:
        con.close()


def every_rollup_query(glue: Any) -> dict[str, list[tuple[Any, ...]]]:
    """The rollup's named queries over what Athena reads of both tables."""
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    for macro in DUCKDB_MACROS:
        con.execute(macro)
    con.register("alb_logs", athena_dataset(glue))
    con.register(ROLLUP_TABLE_NAME, athena_dataset(glue, ROLLUP_TABLE_NAME, ROLLUP_ARROW_SCHEMA))
    try:
        return {query.name: sorted_rows(execute(con, query)) for query in rollup_queries()}
    finally:
        con.close()


@pytest.fixture
def lake(aws_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    """An S3 lake with compacted hours, generation-0 hours and late objects, registered in Glue."""
    boto3.client("s3").create_bucket(Bucket="lake")
    glue: Any = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": DB})
    glue.create_table(DatabaseName=DB, TableInput=glue_table_input(f"{LAKE}/alb_logs/"))
    glue.create_table(DatabaseName=DB, TableInput=rollup_glue_table_input(f"{LAKE}/{ROLLUP_TABLE_NAME}/"))
    ingest = ["--lake", LAKE, "--glue-database", DB, "--quiet", "--no-batch"]
    write_objects(tmp_path / "first", range(1, 7), (20, 21), 40)
    assert main(["ingest", str(tmp_path / "first"), *ingest]) == 0
    assert main(["compact", "--lake", LAKE, "--glue-database", DB, "--older-than", "0"]) == 0
    write_objects(tmp_path / "late", range(7, 9), (21, 22), 40)  # late into 21 (compacted), new hour 22
    assert main(["ingest", str(tmp_path / "late"), *ingest]) == 0
    capsys.readouterr()
    return glue


def test_sync_rebuilds_deleted_partitions_and_table_and_every_query_answers_as_before(
    lake: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    glue = lake
    before = partitions(glue)
    assert len(before) == 3 and sum("/compacted/" in loc for loc in before.values()) == 2
    local_before, athena_before = every_query(LAKE), every_query(athena_dataset(glue))
    assert local_before == athena_before
    assert local_before["overview"] and len(local_before) >= 10

    glue.batch_delete_partition(DatabaseName=DB, TableName="alb_logs",
                                PartitionsToDelete=[{"Values": list(v)} for v in before])
    glue.delete_table(DatabaseName=DB, Name="alb_logs")
    assert main(["catalog", "sync", "--lake", LAKE, "--glue-database", DB, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "create table alblake.alb_logs" in out and "would change 4 (3 created" in out
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_table(DatabaseName=DB, Name="alb_logs")  # a dry run changes nothing

    assert main(["catalog", "sync", "--lake", LAKE, "--glue-database", DB]) == 0
    assert "changed 4 (3 created, 0 moved, 0 deleted)" in capsys.readouterr().out
    assert partitions(glue) == before
    assert every_query(athena_dataset(glue)) == athena_before
    assert every_query(LAKE) == local_before

    assert main(["catalog", "sync", "--lake", LAKE, "--glue-database", DB]) == 0  # idempotent
    assert "changed 0 (0 created, 0 moved, 0 deleted), 3 already right" in capsys.readouterr().out


def test_sync_rebuilds_the_rollup_table_and_partitions_and_its_queries_answer_as_before(
    lake: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    glue = lake
    curated, rollup = partitions(glue), partitions(glue, ROLLUP_TABLE_NAME)
    assert len(rollup) == 3 and sum("/compacted/" in loc for loc in rollup.values()) == 2
    assert all(f"/{ROLLUP_TABLE_NAME}/" in location for location in rollup.values())
    rollup_before = every_rollup_query(glue)
    assert rollup_before["errors_by_route"] and len(rollup_before) >= 3
    requests = sum(row[2] for row in rollup_before["errors_by_route"])
    assert requests == sum(row[1] for row in every_query(LAKE)["requests_by_status"])  # 40 lines x 12 objects

    for table, found in (("alb_logs", curated), (ROLLUP_TABLE_NAME, rollup)):
        glue.batch_delete_partition(DatabaseName=DB, TableName=table,
                                    PartitionsToDelete=[{"Values": list(v)} for v in found])
    glue.delete_table(DatabaseName=DB, Name=ROLLUP_TABLE_NAME)
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_table(DatabaseName=DB, Name=ROLLUP_TABLE_NAME)

    assert main(["catalog", "sync", "--lake", LAKE, "--glue-database", DB]) == 0
    out = capsys.readouterr().out
    assert f"create table {DB}.{ROLLUP_TABLE_NAME}" in out
    assert f"{DB}.alb_logs: changed 3 (3 created" in out and f"{DB}.{ROLLUP_TABLE_NAME}: changed 4 (3 created" in out
    assert partitions(glue) == curated and partitions(glue, ROLLUP_TABLE_NAME) == rollup
    assert every_rollup_query(glue) == rollup_before

    assert main(["catalog", "sync", "--lake", LAKE, "--glue-database", DB]) == 0  # idempotent
    assert f"{DB}.{ROLLUP_TABLE_NAME}: changed 0 (0 created, 0 moved, 0 deleted), 3 already right" in (
        capsys.readouterr().out
    )


def test_sync_moves_a_wrong_location_back_and_deletes_a_partition_without_data(
    lake: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    glue = lake
    before = partitions(glue)
    athena_before = every_query(athena_dataset(glue))
    # hour 21: compacted, then late objects went into its live folder; its generation-0 folder lacks them
    compacted = next(values for values, location in before.items() if values[2] == "21")
    assert "/compacted/" in before[compacted]
    table_sd = glue.get_table(DatabaseName=DB, Name="alb_logs")["Table"]["StorageDescriptor"]
    generation0 = f"{LAKE}/alb_logs/elb_name={compacted[0]}/day={compacted[1]}/hour={compacted[2]}/"
    moved_by_hand = {**table_sd, "Location": generation0}
    glue.update_partition(DatabaseName=DB, TableName="alb_logs", PartitionValueList=list(compacted),
                          PartitionInput={"Values": list(compacted), "StorageDescriptor": moved_by_hand})
    stray = ["my-loadbalancer", "2018-07-03", "05"]
    glue.create_partition(DatabaseName=DB, TableName="alb_logs",
                          PartitionInput={"Values": stray, "StorageDescriptor": {**table_sd, "Location": f"{LAKE}/x/"}})
    assert every_query(athena_dataset(glue)) != athena_before  # the retired folder: no late rows, one more hour

    assert main(["catalog", "sync", "--lake", LAKE, "--glue-database", DB]) == 0
    out = capsys.readouterr().out
    assert f"move    {'/'.join(compacted)}" in out and "delete  my-loadbalancer/2018-07-03/05" in out
    assert partitions(glue) == before
    assert every_query(athena_dataset(glue)) == athena_before


def test_sync_needs_an_s3_lake_and_a_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["catalog", "sync", "--lake", str(tmp_path)]) == 2
    assert "give --stack NAME, or --lake" in capsys.readouterr().err
    assert main(["catalog", "sync", "--lake", str(tmp_path), "--glue-database", DB]) == 2
    assert "the lake must be s3://" in capsys.readouterr().err
