"""The command line against AWS-shaped endpoints: ``sql``/``files``/``status`` formats on an S3 lake and through
``--stack`` (moto_server, real endpoint), ``sql --athena`` with the scope narrowing the catalog table (moto runs
no SQL: results are preset through moto's documented query-results API, labelled PRESET), only ``AWS_REGION`` set
(moto in-process), unreachable S3 and Glue (a closed port), and a backfill whose queue does not exist."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from alblake.aws.session import forget_clients
from alblake.cli import main
from alblake.sample import write_sample_logs
from alblake.schema import glue_table_input
from tests.integration.moto_endpoint import aws_endpoint, moto_server_url

__all__ = ["aws_endpoint", "moto_server_url"]  # fixtures

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS..CloudFormation..WaitConditionHandle")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()


def stack_template(outputs: dict[str, str]) -> str:
    return json.dumps({
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    })


def s3_lake(tmp_path: Path) -> str:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="prod-lake")
    write_sample_logs(tmp_path / "logs", files=6, lines_per_file=100, malformed_every=0)
    assert main(["ingest", str(tmp_path / "logs"), "--lake", "s3://prod-lake", "--quiet"]) == 0
    return "s3://prod-lake"


def test_sql_files_and_status_on_an_s3_lake_named_by_its_stack(
    aws_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = s3_lake(tmp_path)
    boto3.client("cloudformation").create_stack(StackName="prod", TemplateBody=stack_template(
        {"LakeBucketName": "prod-lake", "GlueDatabaseName": "prod_alblake", "AthenaWorkGroupName": "prod-alblake"}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("ALBLAKE_LAKE", raising=False)
    code, out, err = run(capsys, "sql", "SELECT count(*) AS n FROM alb_logs", "--stack", "prod", "--csv")
    assert (code, out, err) == (0, "n\n600\n", "")
    code, out, _ = run(capsys, "sql", "SELECT count(*) AS n FROM alb_logs", "--lake", lake, "--csv",
                       "--since", "2026-11-24T09:00Z", "--until", "2026-11-24T09:30Z")
    hour_rows = int(out.splitlines()[1])  # the first of the two 5-minute rounds (09:00 and 09:40)
    files = run(capsys, "files", "--stack", "prod", "--since", "2026-11-24T09:00Z", "--until", "2026-11-24T10:00Z")[1]
    assert hour_rows == 300 and files and all("/hour=09/" in f for f in files.splitlines())
    assert all(f.startswith("s3://prod-lake/alb_logs/") for f in files.splitlines())
    (tmp_path / "alblake.toml").write_text('stack = "prod"\n')
    body = json.loads(run(capsys, "status", "--json")[1])
    assert body["rows"] == 600 and len(body["load_balancers"]) == 3


def test_sql_on_athena_narrows_the_catalog_table_preset(
    aws_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """PRESET: moto runs no SQL; its query-results API hands back the rows Athena would. What is checked: the
    statement Athena receives (database, workgroup, the scope as a WITH over the catalog table) and the output."""
    boto3.client("athena").create_work_group(Name="prod-alblake")
    rows = [{"Data": [{"VarCharValue": "n"}]}, {"Data": [{"VarCharValue": "42"}]}]
    _post(f"{aws_endpoint}/moto-api/static/athena/query-results",
          {"results": [{"rows": rows, "column_info": [{"Name": "n", "Type": "bigint"}]}], "region": "us-east-1"})
    code, out, err = run(capsys, "sql", "SELECT count(*) AS n FROM alb_logs WHERE elb_status_code >= 500",
                         "--athena", "--workgroup", "prod-alblake", "--database", "prod_alblake", "--elb", "web-prod",
                         "--since", "2026-11-24T08:00Z", "--until", "2026-11-24T08:30Z", "--json")
    assert (code, out, err) == (0, '[{"n": 42}]\n', "")
    athena = boto3.client("athena")
    (execution_id,) = athena.list_query_executions()["QueryExecutionIds"]
    execution = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
    assert execution["QueryExecutionContext"]["Database"] == "prod_alblake"
    assert execution["WorkGroup"] == "prod-alblake"
    assert execution["Query"].startswith(
        "WITH alb_logs AS (SELECT * FROM \"prod_alblake\".\"alb_logs\" WHERE elb_name = 'web-prod' AND "
        "day >= '2026-11-24' AND \"time\" >= TIMESTAMP '2026-11-24 08:00:00.000000' AND day <= '2026-11-24' AND "
        "\"time\" < TIMESTAMP '2026-11-24 08:30:00.000000')\nSELECT count(*) AS n FROM alb_logs WHERE"
    )


def test_athena_defaults_to_the_database_of_the_default_stack_preset(
    aws_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PRESET (moto runs no SQL): with no --database, --stack or configuration, the database is the one the
    template creates for a stack named alblake."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    boto3.client("athena").create_work_group(Name="alblake-alblake")
    preset = {"rows": [{"Data": [{"VarCharValue": "x"}]}], "column_info": [{"Name": "x", "Type": "bigint"}]}
    _post(f"{aws_endpoint}/moto-api/static/athena/query-results", {"results": [preset]})
    assert run(capsys, "query", "overview", "--athena")[0] == 0
    athena = boto3.client("athena")
    (execution_id,) = athena.list_query_executions()["QueryExecutionIds"]
    execution = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
    assert execution["QueryExecutionContext"]["Database"] == "alblake_alblake"
    assert execution["WorkGroup"] == "alblake-alblake"


@pytest.fixture
def only_aws_region(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Credentials and AWS_REGION only, as the README documents (no AWS_DEFAULT_REGION, no profile files)."""
    for name in ("AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    forget_clients()
    with mock_aws():
        yield
    forget_clients()


def test_only_aws_region_is_enough_for_athena_and_glue(
    only_aws_region: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket="lake", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    glue: Any = boto3.client("glue", region_name="eu-west-1")
    glue.create_database(DatabaseInput={"Name": "prod_alblake"})
    glue.create_table(DatabaseName="prod_alblake", TableInput=glue_table_input("s3://lake/alb_logs/"))
    write_sample_logs(tmp_path / "logs", files=2, lines_per_file=20)
    code, _, err = run(capsys, "ingest", str(tmp_path / "logs"), "--lake", "s3://lake", "--glue-database",
                       "prod_alblake", "--quiet")
    assert (code, err) == (0, "")
    assert glue.get_partitions(DatabaseName="prod_alblake", TableName="alb_logs")["Partitions"]
    code, _, err = run(capsys, "query", "overview", "--athena", "--workgroup", "primary", "--database", "prod_alblake")
    assert code == 0 and "NoRegionError" not in err  # moto answers an empty result: the region was found


def test_no_region_at_all_is_one_line_naming_the_ways_to_set_one(
    only_aws_region: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION")
    forget_clients()
    code, _, err = run(capsys, "query", "overview", "--athena")
    assert code == 1 and err.startswith("error: no AWS region: set AWS_REGION") and err.count("\n") == 1


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Every AWS endpoint is a closed port on this machine (S3 and Glue unreachable), one attempt per call."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard",
                "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    forget_clients()
    yield
    forget_clients()


@pytest.mark.parametrize("argv", [
    ["status", "--lake", "s3://lake/x"],
    ["replay", "--dry-run", "--lake", "s3://lake/x"],
    ["compact", "--lake", "s3://lake/x", "--glue-database", "prod_alblake"],
    ["ingest", "LOGS", "--lake", "s3://lake/x", "--glue-database", "prod_alblake"],
    ["query", "overview", "--lake", "s3://lake/x"],
])
def test_unreachable_s3_or_glue_is_one_line(
    argv: list[str], unreachable: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_sample_logs(tmp_path / "logs", files=1, lines_per_file=5)
    argv = [str(tmp_path / "logs") if a == "LOGS" else a for a in argv]
    code, out, err = run(capsys, *argv, *(["--quiet"] if argv[0] == "ingest" else []))
    assert code == 2 and out == ""
    assert err.startswith("error: s3://lake/x: cannot ") and err.count("\n") == 1, err
    assert "Could not connect to the endpoint URL" in err


def test_a_backfill_whose_queue_does_not_exist_promises_no_resume(
    aws_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="logs")
    for path in write_sample_logs(tmp_path / "logs", files=2, lines_per_file=5):
        s3.upload_file(str(path), "logs", path.relative_to(tmp_path / "logs").as_posix())
    code, _, err = run(capsys, "backfill", "s3://logs/AWSLogs/", "--queue", "nosuchq", "--force")
    assert code == 1 and ("nosuchq" in err or "NonExistentQueue" in err)
    assert "resume" not in err and "no state was saved" in err
    assert not list(tmp_path.glob(".alblake-backfill-*.json"))
