"""The fault-injection run: thousands of ALB log objects through the real functions, against moto_server, with
faults everywhere a network, AWS and Lambda produce them; at the end every valid line is in the lake exactly once.

``python -m tests.chaos_run [--objects 5000] [--seed 1]`` (``make chaos SEED=n``); ``tests/integration/
test_chaos.py`` runs a small variant in ``make test``.

The world:
- moto_server is AWS; a fault proxy (``tests/fault_proxy.py``) sits between it and everything the functions, the
  CLI and the queue poller send. The log delivery (what ALB writes) and the final checks talk to moto directly.
- Log objects of several load balancers and nodes, one per node every 5 minutes, a few lines each (every valid
  line has its own request URL, so every row can be counted); some objects with lines that are not log entries
  (quarantined), a few corrupt ones (not gzip, truncated); some delivered twice, some late (after their hour was
  compacted), some left in another prefix for the CLI (``alblake ingest s3://...``) rather than the function.
- The stack's wiring as template.yaml declares it: the log bucket notifies IngestQueue (S3 -> SQS), whose redrive
  policy keeps a message in the dead-letter queue after maxReceiveCount receives.
- The event source mapping: this process receives batches of up to 10 messages and hands each batch, as an SQS
  event, to functions/ingest/app.py's handler in a pool of worker processes (containers: each one keeps its
  clients, as Lambda's do, and is recycled after a few invocations); it deletes the messages the handler did not
  report as failed. The scheduled compaction: functions/compact/app.py's handler, two invocations at once.

Faults (decided by a hash of the seed and the request, so a seed gives the same faults for the same requests):
throttling and 500s answered by the proxy, connections reset before the request reaches AWS, answers lost after
the request took effect (conditional writes: the SDK's retry then meets "precondition failed" caused by its own
write; unconditional writes; SQS deletes and sends), and, inside the functions, a store wrapper that kills the
invocation (a BaseException, as a timeout does) before a write or right after one (a publish cut in the middle).

Retries: the functions keep botocore's default retry configuration (standard mode, 3 attempts, a per-client retry
quota). The quota only runs out in a storm of failures on one client, which the outer retry (SQS redelivery, a
container recycled) absorbs; a function must not retry harder than that against a service in trouble. The run
recycles containers as Lambda does (``--invocations-per-container``), so a client's quota lives as long as a
container.

At the end: a redrive of the dead-letter queue (moto has no message move task: a receive/send/delete loop stands
in for it, labelled so), draining, a last compaction after the grace period, then the invariants (see
``check``), with the figures printed: objects, faults by kind, retries, messages redriven, wall time, the tally.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import importlib.util
import io
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq

from alblake.schema import glue_table_input
from scripts.moto_lake import moto_server
from tests.fault_proxy import FORWARD, LOSE_ANSWER, RESET, Action, ErrorAnswer, Request, fault_proxy

ROOT = Path(__file__).resolve().parents[1]
CLI = "import sys; from tests.chaos_run import compress_time; compress_time(); from alblake.cli import main; " \
      "sys.exit(main(sys.argv[1:]))"
ACCOUNT, REGION = "123456789012", "us-east-1"
LOGS, LAKE_BUCKET, DATABASE, TABLE = "chaos-logs", "chaos-lake", "alblake", "alb_logs"
LAKE = f"s3://{LAKE_BUCKET}"
NOTIFIED = "alb/AWSLogs/"  # the prefix the bucket notifies IngestQueue of
CLI_PREFIX = "history/AWSLogs/"  # objects the CLI ingests (no notification)
FIRST_END = datetime(2026, 3, 1, 0, 5, tzinfo=UTC)
BALANCERS = (("web", "50dc6c495c0c9188", 3), ("api", "7f3e2d1c0b9a8877", 2), ("admin", "0a1b2c3d4e5f6071", 2))
TEMPLATE_LINE = (ROOT / "tests" / "data" / "aws_documented_examples.log").read_text().splitlines()[0]


# --------------------------------------------------------------------------------------------- the objects


@dataclass(frozen=True)
class LogObject:
    key: str
    body: bytes
    urls: tuple[str, ...]  # one per valid line (each unique)
    junk: int = 0  # lines that are not log entries (quarantined)
    corrupt: bool = False
    late: bool = False
    twice: bool = False

    @property
    def via_cli(self) -> bool:
        return self.key.startswith(CLI_PREFIX)


def _line(lb: str, lb_id: str, when: datetime, url: str, node: int) -> str:
    line = TEMPLATE_LINE.replace("2018-07-02T22:23:00.186641Z", when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), 1)
    line = line.replace("app/my-loadbalancer/50dc6c495c0c9188", f"app/{lb}/{lb_id}")
    line = line.replace("10.0.0.1:80 0.000", f"10.0.{node}.1:80 0.000")
    return line.replace("http://www.example.com:80/ ", f"{url} ")


def make_objects(count: int, seed: int, corrupt: int) -> list[LogObject]:
    """``count`` objects: every node of every load balancer delivers one per 5-minute interval, in time order."""
    rng = random.Random(seed)
    nodes = [(lb, lb_id, node) for lb, lb_id, n in BALANCERS for node in range(1, n + 1)]
    corrupt_at = set(rng.sample(range(count // 10, count), corrupt))
    objects: list[LogObject] = []
    for index in range(count):
        lb, lb_id, node = nodes[index % len(nodes)]
        end = FIRST_END + timedelta(minutes=5 * (index // len(nodes)))
        prefix = CLI_PREFIX if rng.random() < 0.1 else NOTIFIED
        key = (
            f"{prefix}{ACCOUNT}/elasticloadbalancing/{REGION}/{end:%Y/%m/%d}/{ACCOUNT}_elasticloadbalancing_"
            f"{REGION}_app.{lb}.{lb_id}_{end:%Y%m%dT%H%MZ}_10.0.{node}.1_{index:08x}.log.gz"
        )
        if index in corrupt_at:
            key = key.replace(CLI_PREFIX, NOTIFIED)
            good = gzip.compress(_line(lb, lb_id, end, "http://x/", node).encode() * 40, mtime=0)
            body = good[: len(good) // 2] if index % 2 else b"\x1f\x8b\x08\x00not gzip at all"
            objects.append(LogObject(key, body, (), corrupt=True))
            continue
        urls, lines = [], []
        for i in range(rng.randint(3, 20)):
            when = end - timedelta(seconds=rng.randint(1, 299), microseconds=rng.randint(0, 999_999))
            url = f"http://www.example.com:80/o{index}/l{i}"
            urls.append(url)
            lines.append(_line(lb, lb_id, when, url, node))
        junk = 1 if index % 20 == 7 else 0  # one object in twenty has a line that is no log entry
        if junk:
            lines.insert(rng.randint(0, len(lines)), f"not a log entry from object {index}")
        body = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
        late = rng.random() < 0.03 and not key.startswith(CLI_PREFIX)
        twice = rng.random() < 0.03 and not key.startswith(CLI_PREFIX)
        objects.append(LogObject(key, body, tuple(urls), junk=junk, late=late, twice=twice))
    return objects


# ---------------------------------------------------------------------------------------- faults: network


def _draw(seed: int, *parts: object) -> float:
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class NetworkFaults:
    """The proxy's decisions: a fault for a request is a function of the seed, the request and how many times an
    identical request was seen before (so a retry meets its own, independent, fate)."""

    seed: int
    rate: float
    enabled: bool = True
    injected: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    retries: int = 0  # requests botocore sent again (amz-sdk-request: attempt > 1)
    _seen: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self, request: Request) -> Action:
        identity = hashlib.sha256(
            f"{request.method} {request.path} {request.target}".encode() + request.body
        ).hexdigest()
        with self._lock:
            self.requests += 1
            if "attempt=1;" not in request.headers.get("amz-sdk-request", "attempt=1;"):
                self.retries += 1
            self._seen[identity] += 1
            occurrence = self._seen[identity]
        if not self.enabled:
            return FORWARD
        kind = self._kind(request, _draw(self.seed, identity, occurrence))
        if kind is None:
            return FORWARD
        with self._lock:
            self.injected[kind] += 1
        return _action(kind, request)

    def _kind(self, request: Request, draw: float) -> str | None:
        service = _service(request)
        write = _is_write(request, service)
        conditional = service == "s3" and request.method == "PUT" and request.conditional
        thresholds: list[tuple[str, float]] = []
        if conditional:
            thresholds.append(("lost answer, conditional write", self.rate * 1.5))
        elif write:
            thresholds.append(("lost answer, write", self.rate * 0.6))
        thresholds += [("throttled", self.rate * 0.4), ("500", self.rate * 0.3), ("connection reset", self.rate * 0.3)]
        for kind, probability in thresholds:
            if draw < probability:
                return kind
            draw -= probability
        return None


def _service(request: Request) -> str:
    if request.target.startswith("AWSGlue."):
        return "glue"
    if request.target.startswith("AmazonSQS."):
        return "sqs"
    return "s3"


def _is_write(request: Request, service: str) -> bool:
    if service == "s3":
        return request.method in ("PUT", "DELETE", "POST")
    operation = request.target.split(".", 1)[-1]
    return operation.startswith(("Batch", "Create", "Update", "Delete", "Send")) and operation != "BatchGetPartition"


def _action(kind: str, request: Request) -> Action:
    service = _service(request)
    if kind.startswith("lost answer"):
        return LOSE_ANSWER
    if kind == "connection reset":
        return RESET
    json_protocol = service != "s3"
    if kind == "throttled":
        code = {"s3": "SlowDown", "glue": "ThrottlingException", "sqs": "RequestThrottled"}[service]
        return ErrorAnswer(503 if service == "s3" else 400, code, json_protocol)
    code = {"s3": "InternalError", "glue": "InternalServiceException", "sqs": "InternalError"}[service]
    return ErrorAnswer(500, code, json_protocol)


# ------------------------------------------------------------------------------ faults: inside the functions


class FunctionKilled(BaseException):
    """The invocation dies here (a timeout, a crash): no ``except Exception`` catches it."""


class Killer:
    """Wraps the lake store's writes in a worker process: before a write, or right after one, the invocation may
    die. Decided by the seed, the invocation's salt (its messages and their receive counts) and the write."""

    def __init__(self, seed: int, rate: float) -> None:
        self.seed, self.rate, self.salt = seed, rate, ""
        self.kills: Counter[str] = Counter()
        self._count: Counter[str] = Counter()

    def install(self) -> None:
        from alblake.aws.s3 import S3Store

        for name in ("put_file", "put_bytes", "put_bytes_if", "delete"):
            setattr(S3Store, name, self._wrap(name, getattr(S3Store, name)))

    def _wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def write(store: Any, key: str, *args: Any, **kwargs: Any) -> Any:
            self._count[f"{name} {key}"] += 1
            draw = _draw(self.seed, self.salt, name, key, self._count[f"{name} {key}"])
            if draw < self.rate / 2:
                self.kills["killed before a write"] += 1
                raise FunctionKilled(f"killed before {name} {key}")
            result = original(store, key, *args, **kwargs)
            if draw < self.rate:
                self.kills["killed after a write (publish cut)"] += 1
                raise FunctionKilled(f"killed after {name} {key}")
            return result

        return write


# --------------------------------------------------------------------------------------- worker processes


def compress_time() -> None:
    """botocore waits up to 1 s, 2 s, ... before retrying a throttled request (50 ms, 100 ms, ... otherwise): the
    run keeps every retry but sleeps as after any other error, so thousands of faults fit in minutes."""
    from botocore.retries.standard import ExponentialBackoff

    setattr(ExponentialBackoff, "_DEFAULT_BACKOFF_CONFIG",  # noqa: B010 (a private attribute mypy does not know)
            {"throttling_base_scale": 0.05, "non_throttling_base_scale": 0.05})


_APP: ModuleType | None = None
_KILLER: Killer | None = None


def _load_function(function: str) -> ModuleType:
    name = f"alblake_{function}_app"
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _start_worker(function: str, environment: dict[str, str], log_dir: str, seed: int, kill_rate: float) -> None:
    """Pool initializer: one process = one container of ``function`` (its output in its own log file)."""
    global _APP, _KILLER
    import logging

    for service in ("alblake-ingest", "alblake-compact"):  # a handler an earlier import left on the parent's stream
        logging.getLogger(service).handlers.clear()
    os.environ.update(environment)
    compress_time()
    log = os.open(Path(log_dir) / f"{function}-{os.getpid()}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), line_buffering=True)
    _KILLER = Killer(seed, kill_rate)
    _KILLER.install()
    _APP = _load_function(function)


@dataclass
class Outcome:
    failed_ids: list[str] | None  # None: the invocation died or raised (every message comes back)
    kills: Counter[str]
    error: str = ""


def _invoke(event: dict[str, Any], salt: str) -> Outcome:
    """One invocation of the container's handler."""
    from scripts.moto_lake import FakeContext

    assert _APP is not None and _KILLER is not None
    _KILLER.salt, before = salt, Counter(_KILLER.kills)
    function = "alblake-compact" if "compact" in _APP.__name__ else "alblake-ingest"
    try:
        result = _APP.handler(event, FakeContext(function_name=function, remaining_millis=900_000))
    except FunctionKilled as killed:
        _APP.pipeline.cache_clear()  # a killed container is not reused
        _APP.metrics.clear_metrics()
        print(f"chaos: {killed}", flush=True)
        return Outcome(None, _KILLER.kills - before, "killed")
    except Exception as error:  # an invocation error (Lambda's Errors metric); the messages come back
        print(f"chaos: invocation error {type(error).__name__}: {error}", flush=True)
        return Outcome(None, _KILLER.kills - before, type(error).__name__)
    failed = [item["itemIdentifier"] for item in result.get("batchItemFailures", [])] if event else []
    return Outcome(failed, _KILLER.kills - before)


# ------------------------------------------------------------------------------------------ the run


@dataclass
class Settings:
    objects: int = 5000
    seed: int = 1
    fault_rate: float = 0.05  # per request, all kinds together (conditional writes lose answers more often)
    kill_rate: float = 0.01  # per store write inside a function
    corrupt: int = 8
    ingest_workers: int = 2
    invocations_per_container: int = 25
    visibility: int = 12  # seconds: a failed message comes back after this (longer than a batch takes)
    max_receives: int = 5  # the queue's maxReceiveCount
    batch_size: int = 5  # messages per invocation (IngestBatchSize)
    batch: int = 60  # objects delivered per round
    compaction_every: float = 10.0  # seconds between two scheduled compaction rounds (the schedule, compressed)

    @classmethod
    def small(cls, seed: int) -> Settings:
        """The variant `make test` runs (well under a minute of the run itself)."""
        return cls(objects=42, seed=seed, corrupt=1, kill_rate=0.03, visibility=4, max_receives=2, batch=21,
                   compaction_every=3.0)


@dataclass
class Figures:
    started: float = field(default_factory=time.monotonic)
    invocations: int = 0
    invocation_errors: Counter[str] = field(default_factory=Counter)
    kills: Counter[str] = field(default_factory=Counter)
    compactions: int = 0
    compaction_errors: int = 0
    redriven: int = 0
    cli_runs: int = 0
    deliveries: int = 0


class Chaos:
    def __init__(self, settings: Settings, work: Path, moto: str, proxy_url: str, faults: NetworkFaults) -> None:
        self.s, self.work, self.moto, self.proxy_url, self.faults = settings, work, moto, proxy_url, faults
        self.direct = _clients(moto)
        self.via_proxy = _clients(proxy_url)
        self.figures = Figures()
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.objects = make_objects(settings.objects, settings.seed, settings.corrupt)
        self.queue_url = ""
        self.dlq_url = ""
        self._compacting: list[Any] = []
        self._last_compaction = 0.0

    # ------------------------------------------------------------------------------- the stack, in moto

    def deploy(self) -> None:
        s3, sqs, glue = self.direct["s3"], self.direct["sqs"], self.direct["glue"]
        for bucket in (LOGS, LAKE_BUCKET):
            s3.create_bucket(Bucket=bucket)
        glue.create_database(DatabaseInput={"Name": DATABASE})
        glue.create_table(DatabaseName=DATABASE, TableInput=glue_table_input(f"{LAKE}/alb_logs/"))
        self.dlq_url = sqs.create_queue(QueueName="ingest-dlq")["QueueUrl"]
        dlq_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:ingest-dlq"
        policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(self.s.max_receives)})
        attributes = {"RedrivePolicy": policy, "VisibilityTimeout": str(self.s.visibility)}
        self.queue_url = sqs.create_queue(QueueName="ingest", Attributes=attributes)["QueueUrl"]
        s3.put_bucket_notification_configuration(
            Bucket=LOGS,
            NotificationConfiguration={"QueueConfigurations": [{
                "QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:ingest",
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": NOTIFIED},
                                                   {"Name": "suffix", "Value": ".log.gz"}]}},
            }]},
        )

    def environment(self, function: str, grace_minutes: int) -> dict[str, str]:
        common = {
            "AWS_ENDPOINT_URL": self.proxy_url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "LAKE_BUCKET": LAKE_BUCKET, "LAKE_PREFIX": "",
            "GLUE_DATABASE": DATABASE, "GLUE_TABLE": TABLE, "POWERTOOLS_METRICS_NAMESPACE": "AlbLake",
            "POWERTOOLS_TRACE_DISABLED": "true", "TMPDIR": str(self.work / "tmp"),
        }
        if function == "ingest":
            return {**common, "POWERTOOLS_SERVICE_NAME": "alblake-ingest", "QUICKSIGHT_DATASET_ID": ""}
        return {**common, "POWERTOOLS_SERVICE_NAME": "alblake-compact", "COMPACT_OLDER_THAN_MINUTES": "1",
                "COMPACT_GRACE_MINUTES": str(grace_minutes)}

    def pool(self, function: str, processes: int, grace_minutes: int = 1) -> Any:
        (self.work / "tmp").mkdir(exist_ok=True)
        context = multiprocessing.get_context("fork")
        kill_rate = self.s.kill_rate if function == "ingest" else self.s.kill_rate / 4
        return context.Pool(
            processes,
            initializer=_start_worker,
            initargs=(function, self.environment(function, grace_minutes), str(self.logs), self.s.seed, kill_rate),
            maxtasksperchild=self.s.invocations_per_container,
        )

    # ------------------------------------------------------------------------------- delivery (ALB)

    def deliver(self, objects: list[LogObject]) -> None:
        for item in objects:
            self.direct["s3"].put_object(Bucket=LOGS, Key=item.key, Body=item.body)
            self.figures.deliveries += 1

    # ------------------------------------------------------------------------------- the event source mapping

    def poll_once(self, ingest: Any, in_flight: list[tuple[Any, list[dict[str, Any]]]]) -> bool:
        """Receive one batch if a container is free, dispatch it; finish the batches that ended. Whether anything
        was received."""
        for pending in [p for p in in_flight if p[0].ready()]:
            in_flight.remove(pending)
            self._finish(pending[0].get(), pending[1])
        if len(in_flight) >= self.s.ingest_workers:
            time.sleep(0.01)
            return True
        try:
            messages = self.via_proxy["sqs"].receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=self.s.batch_size, MessageSystemAttributeNames=["All"]
            ).get("Messages", [])
        except Exception:  # the poller's own call failed (a fault): it polls again
            return True
        if not messages:
            time.sleep(0.05)  # the event source mapping long-polls; an empty answer is not retried at once
            return False
        event = {"Records": [
            {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
             "attributes": m.get("Attributes", {}), "eventSource": "aws:sqs", "awsRegion": REGION,
             "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:ingest"}
            for m in messages
        ]}
        salt = repr(sorted((m["Body"], m.get("Attributes", {}).get("ApproximateReceiveCount")) for m in messages))
        in_flight.append((ingest.apply_async(_invoke, (event, salt)), messages))
        return True

    def _finish(self, outcome: Outcome, messages: list[dict[str, Any]]) -> None:
        self.figures.invocations += 1
        self.figures.kills.update(outcome.kills)
        if outcome.failed_ids is None:
            self.figures.invocation_errors[outcome.error] += 1
            return  # nothing deleted: every message of the batch comes back after the visibility timeout
        for message in messages:
            if message["MessageId"] not in outcome.failed_ids:
                with contextlib.suppress(Exception):  # a failed delete: the message comes back (processed again)
                    self.via_proxy["sqs"].delete_message(QueueUrl=self.queue_url,
                                                         ReceiptHandle=message["ReceiptHandle"])

    def drain(self, ingest: Any, compaction: Any | None = None) -> None:
        """Poll until the queue is empty (also of messages in flight) and every batch has finished."""
        in_flight: list[tuple[Any, list[dict[str, Any]]]] = []
        while True:
            received = self.poll_once(ingest, in_flight)
            if compaction is not None:
                self.compact_in_background(compaction)
            if received or in_flight:
                continue
            if self._queue_total(self.queue_url) == 0:
                return
            time.sleep(0.2)

    def _queue_total(self, url: str) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.direct["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(attributes.get(name, 0)) for name in names)

    # ------------------------------------------------------------------------------- compaction

    def compact_in_background(self, compaction: Any, *, wait: bool = False) -> None:
        """Two scheduled compaction invocations at once, every few seconds (the schedule, compressed)."""
        for job in [j for j in self._compacting if j.ready()]:
            self._compacting.remove(job)
            self._count_compaction(job.get())
        if not self._compacting and (wait or time.monotonic() - self._last_compaction > self.s.compaction_every):
            self._last_compaction = time.monotonic()
            self._compacting = [compaction.apply_async(_invoke, ({}, f"compact-{self.figures.compactions + i}"))
                                for i in range(2)]
        if wait:
            for job in self._compacting:
                self._count_compaction(job.get())
            self._compacting = []

    def _count_compaction(self, outcome: Outcome) -> None:
        self.figures.compactions += 1
        self.figures.kills.update(outcome.kills)
        if outcome.failed_ids is None:
            self.figures.compaction_errors += 1

    def final_compaction(self) -> None:
        """After the grace period: compaction runs (faults still on) until one reports no error."""
        with self.pool("compact", 1, grace_minutes=0) as compaction:
            for attempt in range(8):
                outcome = compaction.apply(_invoke, ({}, f"final-{attempt}"))
                self._count_compaction(outcome)
                if outcome.failed_ids is not None:
                    return
        raise AssertionError("the last compaction kept failing (see the compact-*.log files)")

    # ------------------------------------------------------------------------------- the CLI and redrive

    def cli_ingest(self) -> None:
        """``alblake ingest s3://.../history/`` into the same lake, through the faults, until it reports success."""
        environment = {**os.environ, **self.environment("ingest", 1)}
        for _ in range(10):
            self.figures.cli_runs += 1
            done = subprocess.run(
                [sys.executable, "-c", CLI, "ingest", f"s3://{LOGS}/{CLI_PREFIX}", "--lake", LAKE,
                 "--glue-database", DATABASE, "--quiet", "--jobs", "1"],
                env=environment, capture_output=True, text=True, cwd=ROOT,
            )
            (self.logs / f"cli-{self.figures.cli_runs}.log").write_text(done.stdout + done.stderr)
            if done.returncode == 0:
                return
        raise AssertionError("alblake ingest kept failing (see the cli-*.log files)")

    def redrive(self) -> int:
        """moto's stand-in for the SQS message move task (moto has none; `alblake redrive` starts the real one):
        receive from the dead-letter queue, send each body to the ingest queue, delete."""
        sqs, moved = self.direct["sqs"], 0
        while batch := sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10,
                                           VisibilityTimeout=30).get("Messages", []):
            for message in batch:
                sqs.send_message(QueueUrl=self.queue_url, MessageBody=message["Body"])
                sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=message["ReceiptHandle"])
                moved += 1
        self.figures.redriven += moved
        return moved

    def dead_letters(self) -> list[str]:
        """The object keys the dead-letter queue's messages name (read without consuming them for long)."""
        keys: list[str] = []
        for message in _peek_all(self.direct["sqs"], self.dlq_url):
            from alblake.aws.events import parse_event

            with contextlib.suppress(Exception):
                keys += [r.key for r in parse_event(json.loads(message["Body"])).records]
        return keys

    # ------------------------------------------------------------------------------- the whole run

    def phase(self, name: str) -> None:
        print(f"chaos: {time.monotonic() - self.figures.started:6.1f} s  {name}", flush=True)

    def run(self) -> Report:
        self.deploy()
        on_time = [o for o in self.objects if not o.late]
        with self.pool("ingest", self.s.ingest_workers) as ingest, self.pool("compact", 2) as compaction:
            in_flight: list[tuple[Any, list[dict[str, Any]]]] = []
            for start in range(0, len(on_time), self.s.batch):
                self.deliver(on_time[start : start + self.s.batch])
                deadline = time.monotonic() + 0.5
                while time.monotonic() < deadline:
                    self.poll_once(ingest, in_flight)
                self.compact_in_background(compaction)
            self.phase("delivered on time; draining")
            self.drain(ingest, compaction)
            self.compact_in_background(compaction, wait=True)
            self.phase("the CLI ingests its objects; late and second deliveries")
            cli = threading.Thread(target=self.cli_ingest)
            cli.start()  # the CLI writes into the lake while the functions compact it
            self.compact_in_background(compaction)
            self.deliver([o for o in self.objects if o.late or o.twice])  # late ones; second deliveries
            self.drain(ingest, compaction)
            cli.join()
            self.compact_in_background(compaction, wait=True)
            for _ in range(6):  # redrive until only the corrupt objects' messages come back
                self.phase("redrive of the dead-letter queue, then draining")
                if not self.redrive():
                    break
                self.drain(ingest)
                if set(self.dead_letters()) <= {o.key for o in self.objects if o.corrupt}:
                    break
        self.phase("last compaction, after the grace period")
        self.final_compaction()
        self.phase("checks")
        self.faults.enabled = False
        return check(self)


def _clients(endpoint: str) -> dict[str, Any]:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    return {name: session.client(name, endpoint_url=endpoint) for name in ("s3", "sqs", "glue")}


def _peek_all(sqs: Any, url: str) -> Iterator[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(20):
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        new = [m for m in batch if m["MessageId"] not in seen]
        seen.update((m["MessageId"], m) for m in new)
        if not batch:
            break
    yield from seen.values()


# --------------------------------------------------------------------------------------------- invariants


@dataclass
class Report:
    expected_rows: int
    athena: Counter[str]
    local: Counter[str]
    violations: list[str]
    metrics: Counter[str]
    figures: Figures
    faults: NetworkFaults
    objects: list[LogObject]

    def tally(self, rows: Counter[str]) -> tuple[int, int]:
        expected = {url for o in self.objects for url in o.urls}
        lost = len(expected - set(rows))
        duplicated = sum(n - 1 for n in rows.values() if n > 1)
        duplicated += sum(n for url, n in rows.items() if url not in expected)
        return lost, duplicated

    def lines(self) -> list[str]:
        f, objects = self.figures, self.objects
        athena_lost, athena_dup = self.tally(self.athena)
        local_lost, local_dup = self.tally(self.local)
        kinds = {**self.faults.injected, **f.kills}
        out = [
            f"objects        {len(objects):,} ({sum(o.via_cli for o in objects)} through the CLI, "
            f"{sum(o.late for o in objects)} late, {sum(o.twice for o in objects)} delivered twice, "
            f"{sum(o.corrupt for o in objects)} corrupt, {sum(o.junk > 0 for o in objects)} with junk lines); "
            f"{self.expected_rows:,} valid lines",
            f"requests       {self.faults.requests:,} through the fault proxy; botocore retried "
            f"{self.faults.retries:,}",
            "faults         " + ", ".join(f"{kind}: {n:,}" for kind, n in sorted(kinds.items())),
            f"invocations    ingest {f.invocations:,} (errors: {dict(f.invocation_errors) or 0}), compaction "
            f"{f.compactions} ({f.compaction_errors} failed), CLI runs {f.cli_runs}",
            f"dead letters   {f.redriven:,} message(s) redriven (moto's stand-in for the move task); "
            f"left: {len(self.violations_free_dead_letters)} corrupt object(s)",
            "metrics        " + ", ".join(f"{name} {value:,.0f}" for name, value in sorted(self.metrics.items())
                                          if name not in ("LogLagSeconds", "DurationSeconds")),
            f"wall time      {time.monotonic() - f.started:,.0f} s",
            f"tally          Athena: {athena_lost} lost / {athena_dup} duplicated; "
            f"local reader: {local_lost} lost / {local_dup} duplicated",
        ]
        return out + [f"VIOLATION      {v}" for v in self.violations]

    violations_free_dead_letters: list[str] = field(default_factory=list)


def _rows_under(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".parquet") and "/_" not in item["Key"]:
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                yield from pq.read_table(pa.BufferReader(body), columns=["request_url"]).column(0).to_pylist()


def check(chaos: Chaos) -> Report:
    """The invariants, read from moto directly (no faults)."""
    s3, glue, sqs = chaos.direct["s3"], chaos.direct["glue"], chaos.direct["sqs"]
    violations: list[str] = []
    objects = chaos.objects
    # 1. what Athena reads: every object under every Glue partition's Location
    athena: Counter[str] = Counter()
    partitions = []
    for page in glue.get_paginator("get_partitions").paginate(DatabaseName=DATABASE, TableName=TABLE):
        partitions += page["Partitions"]
    for partition in partitions:
        location = partition["StorageDescriptor"]["Location"]
        athena.update(_rows_under(s3, LAKE_BUCKET, location.removeprefix(f"s3://{LAKE_BUCKET}/")))
    # 2. the local reader (the lake's own states, DuckDB over its visible files)
    local = Counter(_local_rows(chaos.moto))
    # 3. every corrupt object is in the dead-letter queue, its reason in the function's log
    dead = chaos.dead_letters()
    logs = "\n".join(p.read_text(errors="replace") for p in chaos.logs.glob("ingest-*.log"))
    for item in (o for o in objects if o.corrupt):
        if item.key not in dead:
            violations.append(f"corrupt object {item.key} is not in the dead-letter queue")
        if not any(item.key in line and "rejecting object" in line for line in logs.splitlines()):
            violations.append(f"no log line says why {item.key} was rejected")
    stray = [key for key in dead if key not in {o.key for o in objects if o.corrupt}]
    if stray:
        violations.append(f"{len(stray)} valid object(s) still in the dead-letter queue, e.g. {stray[0]}")
    violations += _quarantine_violations(s3, objects)
    # 4. nothing in a generation folder that no state names
    violations += _unnamed_folders(s3)
    # 5. alblake status on the lake exits 0
    status = subprocess.run([sys.executable, "-m", "alblake", "status", "--lake", LAKE],
                            env={**os.environ, "AWS_ENDPOINT_URL": chaos.moto}, capture_output=True, text=True,
                            cwd=ROOT)
    if status.returncode != 0:
        violations.append(f"alblake status exited {status.returncode}: {status.stderr.strip()[:300]}")
    metrics = _metric_sums(chaos.logs)
    expected_rows = sum(len(o.urls) for o in objects)
    if metrics["RowsWritten"] < expected_rows - sum(len(o.urls) for o in objects if o.via_cli):
        violations.append(f"the functions' RowsWritten ({metrics['RowsWritten']:,.0f}) is below the rows they wrote")
    if metrics["ObjectsFailed"] < sum(o.corrupt for o in objects):
        violations.append("ObjectsFailed does not count every corrupt object")
    if not sqs:
        violations.append("no SQS client")
    report = Report(expected_rows, athena, local, violations, metrics, chaos.figures, chaos.faults, objects)
    report.violations_free_dead_letters = [key for key in dead if key not in stray]
    for rows, reader in ((athena, "Athena"), (local, "the local reader")):
        lost, duplicated = report.tally(rows)
        if lost or duplicated:
            violations.append(f"{reader}: {lost} lost, {duplicated} duplicated")
    return report


def _local_rows(endpoint: str) -> list[str]:
    from alblake.analysis import connect
    from alblake.aws.session import forget_clients

    previous = os.environ.get("AWS_ENDPOINT_URL")
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION=REGION)
    forget_clients()
    try:
        con = connect(LAKE)
        rows = [row[0] for row in con.sql("SELECT request_url FROM alb_logs").fetchall()]
        con.close()
        return rows
    finally:
        if previous is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = previous
        forget_clients()


def _quarantine_violations(s3: Any, objects: list[LogObject]) -> list[str]:
    from alblake.convert.quarantine import reason_counts
    from alblake.lake.layout import object_stem, quarantine_key

    violations = []
    for item in (o for o in objects if o.junk):
        key = quarantine_key(object_stem(f"s3://{LOGS}/{item.key}"))
        try:
            content = s3.get_object(Bucket=LAKE_BUCKET, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            violations.append(f"{item.key}: its junk line is in no quarantine file")
            continue
        reasons = next(iter(reason_counts(content).values()), Counter())
        if sum(reasons.values()) != item.junk or not all(reasons):
            violations.append(f"{item.key}: quarantine holds {dict(reasons)}, expected {item.junk} line(s) with "
                              "a reason")
    return violations


def _unnamed_folders(s3: Any) -> list[str]:
    """Data files outside every folder a partition state names (live or retired), and generation-0 files of
    sealed partitions whose state does not name that folder."""
    from alblake.lake.generational import owning_folder
    from alblake.lake.generations import PartitionState, lineage_key, state_key

    states: dict[Any, PartitionState] = {}
    violations: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=LAKE_BUCKET, Prefix="alb_logs/"):
        for item in page.get("Contents", []):
            key = item["Key"]
            folder = owning_folder(key)
            if folder is None:
                violations.append(f"{key}: outside every partition")
                continue
            partition, prefix = folder
            if partition not in states:
                try:
                    body = s3.get_object(Bucket=LAKE_BUCKET, Key=state_key(partition))["Body"].read()
                    states[partition] = PartitionState.from_json(body, state_key(partition))
                except s3.exceptions.NoSuchKey:
                    states[partition] = PartitionState(partition)
            state = states[partition]
            if prefix not in {state.live, *(r.folder for r in state.retired)}:
                violations.append(f"{key}: in a folder its partition's state does not name")
            elif "/compacted/" in key and key.rsplit("/", 1)[-1].startswith("c-"):
                try:
                    s3.head_object(Bucket=LAKE_BUCKET, Key=lineage_key(key))
                except Exception:
                    violations.append(f"{key}: compacted file without its lineage")
    return violations


def _metric_sums(logs: Path) -> Counter[str]:
    sums: Counter[str] = Counter()
    for path in logs.glob("*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"_aws"' in line:
                with contextlib.suppress(ValueError):
                    doc = json.loads(line)
                    for directive in doc["_aws"]["CloudWatchMetrics"]:
                        for metric in directive["Metrics"]:
                            value = doc.get(metric["Name"], 0)
                            sums[metric["Name"]] += sum(value) if isinstance(value, list) else value
    return sums


def run_chaos(settings: Settings, work: Path) -> Report:
    compress_time()
    with moto_server() as moto:
        faults = NetworkFaults(settings.seed, settings.fault_rate)
        with fault_proxy(moto, faults.decide) as proxy:
            return Chaos(settings, work, moto, proxy.url, faults).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--kill-rate", type=float, default=0.01)
    parser.add_argument("--keep", type=Path, help="keep the work directory (worker logs) here")
    args = parser.parse_args(argv)
    settings = Settings(objects=args.objects, seed=args.seed, fault_rate=args.fault_rate, kill_rate=args.kill_rate,
                        corrupt=max(2, args.objects // 600))
    work = args.keep or Path(tempfile.mkdtemp(prefix="alblake-chaos-"))
    print(f"chaos: seed {args.seed}, {args.objects:,} objects, work in {work}", flush=True)
    report = run_chaos(settings, work)
    print("\n".join(report.lines()))
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
