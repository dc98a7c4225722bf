"""``alblake doctor``: what a deploy cannot verify, checked against the running stack, each failure with the one
command that fixes it.

A stack can be CREATE_COMPLETE and still ingest nothing: an existing log bucket whose EventBridge notifications
nobody turned on, a notification configuration replaced by hand, a Glue table moved or dropped, a QuickSight
dataset the stack cannot reach, messages piling up in the dead-letter queue, log objects that never reached the
lake. Every check reads only (``OperatorPolicy`` of the template grants exactly these calls).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from alblake.aws.glue import missing_entity
from alblake.aws.redrive import queue_arn, queue_depth
from alblake.aws.stack import StackOutputs
from alblake.keys import AccessLogKey, classify_key
from alblake.lake.layout import DATA_PREFIX, manifest_key, object_stem
from alblake.s3_urls import parse_s3_url, s3_url

RECENT = timedelta(hours=24)  # log objects younger than this are compared with the lake
SETTLED = timedelta(minutes=15)  # an object older than this should be in the lake (the queue drains in minutes)
MAX_SAMPLED = 200  # newest log objects whose manifests are looked up


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""  # the command (or step) that fixes a failed check

    def lines(self) -> list[str]:
        out = [f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"]
        if not self.ok and self.fix:
            out.append(f"      fix: {self.fix}")
        return out


@dataclass
class Clients:
    s3: Any
    sqs: Any
    glue: Any
    quicksight: Any | None = None
    account_id: str = ""


def _error(error: Exception) -> str:
    if isinstance(error, ClientError):
        detail = error.response.get("Error", {})
        return f"{detail.get('Code', '?')}: {detail.get('Message', '')}".strip()
    return str(error)


def _guarded(name: str, check: Callable[[], Check], fix: str) -> Check:
    try:
        return check()
    except (ClientError, BotoCoreError) as error:
        return Check(name, False, f"cannot check it ({_error(error)})", fix)


def run_checks(outputs: StackOutputs, clients: Clients, *, now: datetime | None = None) -> list[Check]:
    """Every check, in the order an object travels: log bucket -> queue -> function -> lake -> catalog -> SPICE."""
    moment = now or datetime.now(UTC)
    name = outputs.name
    checks = [
        _guarded(
            "log bucket notifications",
            lambda: check_notifications(outputs, clients),
            "grant the caller s3:GetBucketNotification (OperatorPolicyArn output)",
        ),
        _guarded(
            "dead-letter queue",
            lambda: check_dead_letters(outputs, clients),
            "grant the caller sqs:GetQueueAttributes (OperatorPolicyArn output)",
        ),
        _guarded(
            "recent log objects in the lake",
            lambda: check_recent_objects(outputs, clients, moment),
            "grant the caller s3:ListBucket on the log bucket and s3:GetObject on the lake (OperatorPolicyArn)",
        ),
        _guarded(
            "Glue table",
            lambda: check_table(outputs, clients),
            f"alblake catalog sync --stack {shlex.quote(name)}",
        ),
    ]
    if outputs.dataset_id:
        checks.append(
            _guarded(
                "QuickSight dataset",
                lambda: check_quicksight(outputs, clients),
                "grant the caller quicksight:DescribeDataSet (OperatorPolicyArn output)",
            )
        )
    return checks


# --------------------------------------------------------------------------------------- notifications


def _log_location(outputs: StackOutputs) -> tuple[str, str]:
    """The log bucket and the key prefix up to and including ``AWSLogs/``."""
    bucket, key = parse_s3_url(outputs.log_prefix) if outputs.log_prefix else (outputs.log_bucket, "")
    marker = key.find("AWSLogs/")
    return bucket or outputs.log_bucket, key[: marker + len("AWSLogs/")] if marker >= 0 else key


def check_notifications(outputs: StackOutputs, clients: Clients) -> Check:
    """New objects of the log bucket reach the ingest queue: an S3 notification to the queue (the stack's own
    bucket), or EventBridge turned on (an existing bucket, whose rule the stack owns)."""
    name = "log bucket notifications"
    bucket, prefix = _log_location(outputs)
    config = clients.s3.get_bucket_notification_configuration(Bucket=bucket)
    config.pop("ResponseMetadata", None)
    queue = queue_arn(clients.sqs, outputs.ingest_queue_url)
    to_queue = [q for q in config.get("QueueConfigurations", []) if q.get("QueueArn") == queue]
    if to_queue:
        rules = {r["Name"].lower(): r["Value"] for q in to_queue for r in _filter_rules(q)}
        if prefix and not prefix.startswith(rules.get("prefix", "")):
            return Check(
                name, False, f"s3://{bucket} notifies the queue for prefix {rules.get('prefix')!r}, not {prefix!r}",
                f"sam deploy --stack-name {shlex.quote(outputs.name)} (the stack sets the notification again)",
            )
        return Check(name, True, f"s3://{bucket} sends new objects under {prefix or '/'} to the ingest queue")
    if "EventBridgeConfiguration" in config:
        return Check(name, True, f"s3://{bucket} sends its events to EventBridge (the stack's rule forwards them)")
    merged = {**config, "EventBridgeConfiguration": {}}
    command = (
        f"aws s3api put-bucket-notification-configuration --bucket {shlex.quote(bucket)} "
        f"--notification-configuration {shlex.quote(json.dumps(merged, separators=(',', ':')))}"
    )
    if bucket.startswith("alblake-logs-"):  # the stack's own bucket: its notification to the queue was removed
        command = f"sam deploy --stack-name {shlex.quote(outputs.name)} (puts the bucket's notification back)"
    return Check(
        name, False, f"s3://{bucket} neither notifies the ingest queue nor sends events to EventBridge: "
        "new log objects are never ingested", command,
    )


def _filter_rules(config: dict[str, Any]) -> list[dict[str, str]]:
    rules: list[dict[str, str]] = config.get("Filter", {}).get("Key", {}).get("FilterRules", [])
    return rules


# ---------------------------------------------------------------------------------------- dead letters


def check_dead_letters(outputs: StackOutputs, clients: Clients) -> Check:
    name = "dead-letter queue"
    depth = queue_depth(clients.sqs, outputs.dead_letter_queue_url)
    if depth.total == 0:
        return Check(name, True, "empty")
    return Check(
        name, False, f"{depth.total:,} message(s) failed {'' if depth.total == 1 else 'each '}after all receives "
        "(the ingest function's log names each object and why)",
        f"fix the cause, then: alblake redrive --stack {shlex.quote(outputs.name)} --wait",
    )


# ------------------------------------------------------------------------------------ recent objects


def _prefixes(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            yield str(common["Prefix"])


def _region_folders(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    """``<prefix><account>/elasticloadbalancing/<region>/`` folders (``prefix`` ends with ``AWSLogs/``)."""
    for account in _prefixes(s3, bucket, prefix):
        yield from _prefixes(s3, bucket, f"{account}elasticloadbalancing/")


def recent_log_objects(s3: Any, bucket: str, prefix: str, now: datetime) -> list[tuple[str, AccessLogKey]]:
    """The ALB access log objects delivered in the last ``RECENT`` (today's and yesterday's folders), newest first."""
    found: list[tuple[str, AccessLogKey]] = []
    days = sorted({(now - RECENT).date(), now.date()})
    for region in _region_folders(s3, bucket, prefix):
        for day in days:
            folder = f"{region}{day:%Y/%m/%d}/"
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
                for item in page.get("Contents", []):
                    kind = classify_key(str(item["Key"]))
                    if isinstance(kind, AccessLogKey) and kind.end_time >= now - RECENT:
                        found.append((str(item["Key"]), kind))
    return sorted(found, key=lambda item: item[1].end_time, reverse=True)


def check_recent_objects(outputs: StackOutputs, clients: Clients, now: datetime) -> Check:
    """The newest log objects delivered more than ``SETTLED`` ago have a manifest in the lake."""
    name = "recent log objects in the lake"
    bucket, prefix = _log_location(outputs)
    recent = recent_log_objects(clients.s3, bucket, prefix, now)
    if not recent:
        return Check(
            name, False, f"no ALB log object in s3://{bucket}/{prefix} in the last {RECENT.total_seconds() / 3600:g} "
            "hours: are the load balancers logging there (access_logs.s3.enabled, bucket and prefix)?",
            "aws elbv2 describe-load-balancer-attributes --load-balancer-arn ARN (access_logs.s3.*)",
        )
    settled = [(key, kind) for key, kind in recent if kind.end_time <= now - SETTLED][:MAX_SAMPLED]
    missing = [key for key, _ in settled if not _has_manifest(clients.s3, outputs.lake_bucket, s3_url(bucket, key))]
    newest = recent[0][1].end_time.isoformat(timespec="minutes")
    if not missing:
        return Check(name, True, f"{len(settled)} of the newest objects checked, all in the lake (newest {newest})")
    since = min(kind.end_time for key, kind in settled if key in set(missing)).date()
    return Check(
        name, False, f"{len(missing)} of the {len(settled)} newest objects delivered over "
        f"{SETTLED.total_seconds() / 60:g} minutes ago are not in the lake (first: s3://{bucket}/{missing[-1]})",
        f"alblake backfill s3://{bucket}/{prefix} --stack {shlex.quote(outputs.name)} --since {since}",
    )


def _has_manifest(s3: Any, lake_bucket: str, source_id: str) -> bool:
    try:
        s3.head_object(Bucket=lake_bucket, Key=manifest_key(object_stem(source_id)))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


# ------------------------------------------------------------------------------------------------ catalog


def check_table(outputs: StackOutputs, clients: Clients) -> Check:
    name = "Glue table"
    expected = s3_url(outputs.lake_bucket, DATA_PREFIX)
    fix = f"alblake catalog sync --stack {shlex.quote(outputs.name)}"
    try:
        table = clients.glue.get_table(DatabaseName=outputs.glue_database, Name=outputs.table)["Table"]
    except ClientError as error:
        if missing_entity(error):
            return Check(name, False, f"{outputs.glue_database}.{outputs.table} does not exist", fix)
        raise
    location = str(table.get("StorageDescriptor", {}).get("Location", ""))
    if location.rstrip("/") != expected.rstrip("/"):
        return Check(name, False, f"Location is {location!r}, the lake is {expected!r}", fix)
    return Check(name, True, f"{outputs.glue_database}.{outputs.table} at {expected}")


# --------------------------------------------------------------------------------------------- QuickSight


def check_quicksight(outputs: StackOutputs, clients: Clients) -> Check:
    """The dataset exists in this Region and account and its last refresh did not fail."""
    name = "QuickSight dataset"
    if clients.quicksight is None:
        return Check(name, False, "no QuickSight client", "")
    try:
        clients.quicksight.describe_data_set(AwsAccountId=clients.account_id, DataSetId=outputs.dataset_id)
        ingestions = clients.quicksight.list_ingestions(
            AwsAccountId=clients.account_id, DataSetId=outputs.dataset_id, MaxResults=5
        ).get("Ingestions", [])
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        region = clients.quicksight.meta.region_name
        if code == "ResourceNotFoundException":
            return Check(
                name, False, f"dataset {outputs.dataset_id} not found in {region} ({_error(error)})",
                f"deploy the stack where QuickSight is (EnableQuickSight=true) or set EnableQuickSight=false: "
                f"sam deploy --stack-name {shlex.quote(outputs.name)} --parameter-overrides EnableQuickSight=false",
            )
        if code in ("AccessDeniedException", "UnsupportedUserEditionException"):
            return Check(
                name, False, f"{_error(error)} in {region}",
                "subscribe QuickSight Enterprise in this account and give QuickSightPrincipalArn's user access",
            )
        raise
    failed = [i for i in ingestions if i.get("IngestionStatus") == "FAILED"]
    if ingestions and ingestions[0].get("IngestionStatus") == "FAILED":
        info = failed[0].get("ErrorInfo", {})
        return Check(
            name, False, f"the last refresh failed: {info.get('Type', '?')}: {info.get('Message', '')}",
            "check QuickSightAthenaRole's access (README, Lake Formation) and refresh the dataset in QuickSight",
        )
    return Check(name, True, f"{outputs.dataset_id} exists; {len(ingestions)} recent refresh(es), none failed last")
