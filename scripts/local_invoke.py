"""Do what `sam local invoke -e EVENT` would, without Docker or AWS: run functions/ingest/app.handler
against a local moto_server.

    .venv/bin/python scripts/local_invoke.py events/s3-put.json      (or: make local-invoke EVENT=...)

Starts moto_server on 127.0.0.1 (free port), points boto3 at it (AWS_ENDPOINT_URL, fake credentials),
creates the log and lake buckets, the Glue database/table and a QuickSight dataset, uploads a generated
ALB log at every access-log key of the event (keys decoded from the event), invokes the real handler with
the event and a fake context, and prints what landed: lake objects, Parquet row counts, Glue partitions,
the SPICE refresh and the EMF metric lines.

QuickSight: moto_server implements create_ingestion but not list_ingestions (HTTP 404), so the refresher's
debounce cannot run against it. When the probe finds it missing, the handler's QuickSight client is a
botocore Stubber (no ingestion yet -> create_ingestion), printed as STUBBED, and a second refresh request
against a stubbed in-progress ingestion shows the debounce. S3 and Glue are always moto_server.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import io
import json
import os
import random
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from alblake.keys import AccessLogKey, classify_key, decode_event_key  # noqa: E402
from alblake.sample import LOAD_BALANCERS, LoadBalancer, generate_lines  # noqa: E402
from scripts.moto_lake import (  # noqa: E402
    ACCOUNT,
    DATABASE,
    REGION,
    TABLE,
    FakeContext,
    create_lake_resources,
    ingest_environment,
    moto_server,
)

LAKE_BUCKET = "alblake-lake-local"
DATASET = "alb-logs"


def load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("app", ROOT / "functions" / "ingest" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    return module


def log_body(key: AccessLogKey, lines: int, seed: int) -> bytes:
    lb = next((b for b in LOAD_BALANCERS if b.name == key.lb_name), None)
    if lb is None or lb.lb_id != key.lb_id:
        lb = LoadBalancer(key.lb_name, key.lb_id, ("10.0.1.10:80", "10.0.1.11:80"), key.lb_name)
    start = key.end_time - timedelta(minutes=5)
    text = generate_lines(lines, lb=lb, start=start, seconds=300, rng=random.Random(seed), malformed_every=250)
    return gzip.compress(("\n".join(text) + "\n").encode(), mtime=0)


def setup(clients: dict[str, Any], event: dict[str, Any], lines: int) -> None:
    s3, glue, qs = clients["s3"], clients["glue"], clients["quicksight"]
    buckets = {r["s3"]["bucket"]["name"] for r in event["Records"]} | {LAKE_BUCKET}
    create_lake_resources(s3, glue, f"s3://{LAKE_BUCKET}/alb_logs/", buckets)
    qs.create_data_set(
        AwsAccountId=ACCOUNT,
        DataSetId=DATASET,
        Name="ALB logs",
        ImportMode="SPICE",
        PhysicalTableMap={
            "alb": {
                "RelationalTable": {
                    "DataSourceArn": f"arn:aws:quicksight:{REGION}:{ACCOUNT}:datasource/athena",
                    "Name": TABLE,
                    "InputColumns": [{"Name": "time", "Type": "DATETIME"}],
                }
            }
        },
    )
    print(f"created: buckets {sorted(buckets)}, Glue {DATABASE}.{TABLE}, QuickSight dataset {DATASET}")
    for i, record in enumerate(event["Records"]):
        bucket, key = record["s3"]["bucket"]["name"], decode_event_key(record["s3"]["object"]["key"])
        kind = classify_key(key)
        body = log_body(kind, lines, seed=i) if isinstance(kind, AccessLogKey) else b"Enable AccessLog\n"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        print(f"uploaded s3://{bucket}/{key} ({len(body)} bytes)")


def moto_lists_ingestions(qs: Any) -> bool:
    """False when moto_server does not implement list_ingestions (a bare HTTP 404, no QuickSight error code)."""
    from botocore.exceptions import ClientError

    try:
        qs.list_ingestions(AwsAccountId=ACCOUNT, DataSetId=DATASET)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "404":
            return False
        raise
    return True


@dataclass
class StubbedQuickSight:
    """A QuickSight client whose calls are answered by a botocore Stubber (never by moto or AWS)."""

    client: Any
    stubber: Any

    @classmethod
    def create(cls) -> StubbedQuickSight:
        import boto3
        from botocore.stub import Stubber

        client = boto3.client("quicksight", endpoint_url="https://stubbed.invalid")
        stubber = Stubber(client)
        # The handler's refresh: no ingestion in the window yet, so it creates one.
        stubber.add_response("list_ingestions", {"Ingestions": [], "Status": 200})
        stubber.add_response("create_ingestion", {"IngestionId": "stubbed", "IngestionStatus": "INITIALIZED"})
        stubber.activate()
        return cls(client, stubber)

    def demonstrate_debounce(self, refresher: Any) -> None:
        from botocore.stub import Stubber

        from alblake.aws.quicksight import SpiceRefresher, ingestion_id_for

        # A fresh queue: the handler did not consume the first responses if it wrote no rows.
        self.stubber.deactivate()
        self.stubber = Stubber(self.client)
        self.stubber.activate()
        now = datetime.now(UTC)
        ingestion_id = ingestion_id_for(now, refresher.min_interval)
        arn = f"arn:aws:quicksight:{REGION}:{ACCOUNT}:dataset/{DATASET}/ingestion/{ingestion_id}"
        running = {"Arn": arn, "IngestionId": ingestion_id, "IngestionStatus": "RUNNING", "CreatedTime": now}
        # Each request from a container that has not asked yet (a warm container asks once per interval: below).
        def container() -> Any:
            return SpiceRefresher(self.client, refresher.dataset_id, min_interval=refresher.min_interval)

        self.stubber.add_response("list_ingestions", {"Ingestions": [running], "Status": 200})
        warm = container()
        outcome = warm.request_refresh(ACCOUNT)
        print(f"  request while stubbed ingestion {ingestion_id} is RUNNING -> {outcome.status.value}")
        completed = {**running, "IngestionStatus": "COMPLETED", "CreatedTime": now - timedelta(minutes=5)}
        self.stubber.add_response("list_ingestions", {"Ingestions": [completed], "Status": 200})
        outcome = container().request_refresh(ACCOUNT)
        print(
            f"  request after it COMPLETED 5 min ago (min interval {refresher.min_interval}) -> {outcome.status.value}"
        )
        outcome = warm.request_refresh(ACCOUNT)
        print(f"  the first container again, within the interval (no ListIngestions call) -> {outcome.status.value}")
        self.stubber.assert_no_pending_responses()


def use_stubbed_quicksight(app: Any, quicksight: Any) -> None:
    """The container's pipeline as app.pipeline() builds it, except for the (stubbed) QuickSight client."""
    import boto3

    from alblake.service.ingest import LambdaConfig, build_pipeline

    pipeline = build_pipeline(
        LambdaConfig.from_env(logger=app.logger),
        s3=boto3.client("s3"),
        glue=boto3.client("glue"),
        quicksight=quicksight,
        sts=boto3.client("sts"),
        logger=app.logger,
        metrics=app.metrics,
    )
    app.pipeline = lambda: pipeline


def report(clients: dict[str, Any], output: str, stubbed: StubbedQuickSight | None, app: ModuleType) -> None:
    import pyarrow.parquet as pq

    s3, glue, qs = clients["s3"], clients["glue"], clients["quicksight"]
    print("\n=== lake objects ===")
    total = 0
    for obj in s3.list_objects_v2(Bucket=LAKE_BUCKET).get("Contents", []):
        key = obj["Key"]
        if key.endswith(".parquet"):
            rows = pq.read_table(io.BytesIO(s3.get_object(Bucket=LAKE_BUCKET, Key=key)["Body"].read())).num_rows
            total += rows
            print(f"  s3://{LAKE_BUCKET}/{key}  {obj['Size']} B  {rows} rows")
        elif key.startswith("quarantine/"):
            lines = s3.get_object(Bucket=LAKE_BUCKET, Key=key)["Body"].read().count(b"\n")
            print(f"  s3://{LAKE_BUCKET}/{key}  {obj['Size']} B  {lines} quarantined lines")
        else:
            print(f"  s3://{LAKE_BUCKET}/{key}  {obj['Size']} B")
    print(f"  total Parquet rows: {total}")
    print("\n=== Glue partitions ===")
    for part in glue.get_partitions(DatabaseName=DATABASE, TableName=TABLE)["Partitions"]:
        print(f"  {part['Values']}  {part['StorageDescriptor']['Location']}")
    print("\n=== QuickSight SPICE refresh ===")
    if stubbed is None:
        for it in qs.list_ingestions(AwsAccountId=ACCOUNT, DataSetId=DATASET)["Ingestions"]:
            print(f"  {it['IngestionId']} {it['IngestionStatus']} (moto_server)")
    else:
        print(
            "  QuickSight list_ingestions unsupported by moto_server: the handler's QuickSight client was STUBBED "
            "(botocore Stubber),\n  nothing was sent to moto or AWS; refresh logic is covered by Stubber tests "
            "(tests/integration/test_quicksight.py)."
        )
        print("  debounce of the handler's refresher, STUBBED responses:")
        stubbed.demonstrate_debounce(app.pipeline().refresher)
    print("\n=== EMF metrics ===")
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            doc = json.loads(line)
            names = [m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
            print("  " + ", ".join(f"{n}={doc[n]}" for n in names))


def main() -> int:
    args = sys.argv[1:]
    if not args:
        raise SystemExit(__doc__)
    event: dict[str, Any] = json.loads(Path(args[0]).read_text())
    lines = int(os.environ.get("LINES", "2000"))
    with moto_server() as url:
        os.environ.update({**ingest_environment(LAKE_BUCKET, dataset_id=DATASET), "AWS_ENDPOINT_URL": url})
        os.environ.pop("AWS_PROFILE", None)
        return invoke(args[0], event, lines, url)


def invoke(event_path: str, event: dict[str, Any], lines: int, url: str) -> int:
    import boto3

    clients = {n: boto3.client(n) for n in ("s3", "glue", "quicksight")}
    print(f"moto_server: {url}")
    setup(clients, event, lines)
    stubbed = None if moto_lists_ingestions(clients["quicksight"]) else StubbedQuickSight.create()
    buf = io.StringIO()
    failed: BaseException | None = None
    print(f"\n=== invoking app.handler with {event_path} ===")
    if stubbed is not None:
        print("(S3 and Glue: moto_server. QuickSight: STUBBED, moto_server has no list_ingestions)")
    with contextlib.redirect_stdout(buf):
        app = load_app()
        if stubbed is not None:
            use_stubbed_quicksight(app, stubbed.client)
        try:
            result = app.handler(event, FakeContext(remaining_millis=900_000))
        except Exception as e:
            failed = e
    output = buf.getvalue()
    print(output, end="")
    if failed is None:
        print("\n=== handler result ===\n" + json.dumps(result, indent=2))
    else:
        print(f"\n=== handler raised {type(failed).__name__} ===\n{failed}")
    report(clients, output, stubbed, app)
    return 0 if failed is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
