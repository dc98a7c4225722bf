"""The fault-injection run: thousands of ALB log objects through the real functions, against moto_server, with
faults everywhere a network, AWS and Lambda produce them; at the end every valid line is in the lake exactly once.

``python -m tests.chaos_run [--objects 5000] [--seed 1]`` (``make chaos SEED=n``); ``tests/integration/
test_chaos.py`` runs a small variant in ``make test``.

The world:
- moto_server is AWS; a fault proxy (``tests/fault_proxy.py``) sits between it and everything the functions, the
  CLI and the queue poller send. The log delivery (what ALB writes) and the final checks talk to moto directly.
- Log objects of several load balancers and nodes, one per node every 5 minutes, a few lines each (every valid
  line has its own request URL, so every row can be counted); some objects with lines that are not log entries
  (quarantined), a few corrupt ones (not gzip, truncated); some delivered twice, some late (delivered after their
  hour was compacted; every second late one through `alblake backfill`, whose SendMessageBatch calls go through
  the proxy), some left in another prefix for the CLI (``alblake ingest s3://...``) rather than the function.
- The stack's wiring as template.yaml declares it: the log bucket notifies IngestQueue (S3 -> SQS), whose redrive
  policy keeps a message in the dead-letter queue after maxReceiveCount receives; the curated and rollup tables.
- The event source mapping: this process receives batches of up to 10 messages and hands each batch, as an SQS
  event, to functions/ingest/app.py's handler in a pool of worker processes (containers: each one keeps its
  clients, as Lambda's do, and is recycled after a few invocations); it deletes the messages the handler did not
  report as failed. ALB's deliveries are paced by it: the next round comes when this one is mostly taken. The
  scheduled compaction: functions/compact/app.py's handler, two invocations at once, every few delivery rounds.

Faults: throttling and 500s answered by the proxy, connections reset before the request reaches AWS, answers lost
after the request took effect (conditional writes: the SDK's retry then meets "precondition failed" caused by its
own write; unconditional writes; SQS deletes and sends), and, inside the functions, a store wrapper that kills the
invocation (a BaseException, as a timeout does) before a write or right after one (a publish cut in the middle).

Reproducible from the seed: every decision is a pure function of (seed, identity, occurrence), where the identity
holds only what two runs of one seed share however their processes interleave (the operation and the resource: an
S3 key without generation tokens, a Glue table and partitions, the object keys an SQS message names; never a
request body, receipt handle or time), and occurrence n of an identity meets a fault only if occurrences 1..n all
drew one (a chain from the first request, ended by the first clean answer). Every identity's first request happens
in every run, and each fault brings the next occurrence (the SDK's retry, or SQS's), so the same seed injects the
same faults of each kind. The poller's receives and depth reads are never faulted (they are Lambda's, and their
number follows timing). With ``force_each_kind`` each kind is also injected once into the first eligible request,
so that no run misses one. What still follows timing: which batch a message shares (an invocation killed fails
its whole batch), and which of two compactions wins a race.

Retries: the functions keep botocore's default retry configuration (standard mode, 3 attempts, a per-client retry
quota). The quota only runs out in a storm of failures on one client, which the outer retry (SQS redelivery, a
container recycled) absorbs; a function must not retry harder than that against a service in trouble. The run
recycles containers as Lambda does (``--invocations-per-container``), so a client's quota lives as long as a
container.

Checks mid-run (after the on-time objects drained: no row twice or unknown, the rollup's sums equal the curated
table's) and at the end: a redrive of the dead-letter queue (moto has no message move task: a receive/send/delete
loop stands in for it, labelled so), draining, a last compaction after the grace period, then the invariants (see
``check``), with the figures printed: objects, faults by kind, retries, messages redriven, the oldest message's
wait, the rollup, wall time, the tally. ``faults.tsv`` in the work directory lists every network fault.
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
import re
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
from urllib.parse import parse_qs, unquote, unquote_plus, urlsplit

import boto3
import pyarrow as pa
import pyarrow.parquet as pq

from alblake.schema import ROLLUP_TABLE_NAME, glue_table_input, rollup_glue_table_input
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
BACKFILL_PREFIX = "backfill/AWSLogs/"  # late objects `alblake backfill` sends to the queue (no notification)
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

    @property
    def backfilled(self) -> bool:
        return self.key.startswith(BACKFILL_PREFIX)


def _line(lb: str, lb_id: str, when: datetime, url: str, node: int) -> str:
    line = TEMPLATE_LINE.replace("2018-07-02T22:23:00.186641Z", when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), 1)
    line = line.replace("app/my-loadbalancer/50dc6c495c0c9188", f"app/{lb}/{lb_id}")
    line = line.replace("10.0.0.1:80 0.000", f"10.0.{node}.1:80 0.000")
    return line.replace("http://www.example.com:80/ ", f"{url} ")


def make_objects(count: int, seed: int, corrupt: int, late: int) -> list[LogObject]:
    """``count`` objects: every node of every load balancer delivers one per 5-minute interval, in time order.
    ``late`` of them (from the first two thirds, so their hour is compacted before they come) are delivered after
    the others, every second one to a prefix `alblake backfill` sends to the queue."""
    rng = random.Random(seed)
    nodes = [(lb, lb_id, node) for lb, lb_id, n in BALANCERS for node in range(1, n + 1)]
    corrupt_at = set(rng.sample(range(count // 10, count), corrupt))
    late_at = sorted(rng.sample([i for i in range(count * 2 // 3) if i not in corrupt_at], late))
    backfill_at = set(late_at[::2])
    objects: list[LogObject] = []
    for index in range(count):
        lb, lb_id, node = nodes[index % len(nodes)]
        end = FIRST_END + timedelta(minutes=5 * (index // len(nodes)))
        prefix = CLI_PREFIX if rng.random() < 0.1 and index not in late_at else NOTIFIED
        prefix = BACKFILL_PREFIX if index in backfill_at else prefix
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
        late = index in late_at
        twice = rng.random() < 0.03 and key.startswith(NOTIFIED) and not late
        objects.append(LogObject(key, body, tuple(urls), junk=junk, late=late, twice=twice))
    return objects


# ---------------------------------------------------------------------------------------- faults: network


def _draw(seed: int, *parts: object) -> float:
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


_GENERATION = re.compile(r"compacted/(.*?)g\d+-[0-9a-f]+/")
_COMPACTED_FILE = re.compile(r"c-[0-9a-f]+-(\d+)")
_ATTEMPT_TOKEN = re.compile(r"\.[0-9a-f]{16}(\.parquet)")
_BODY_KEY = re.compile(r'"key"\s*:\s*"([^"]+)"')


def stable_key(key: str) -> str:
    """A lake key without what differs between two runs of one seed: a generation folder (its number counts the
    compactions so far, its token is random), a compacted file's token and the attempt token of an object's data
    file. A file keeps its partition and name, whichever generation or attempt it belongs to."""
    return _ATTEMPT_TOKEN.sub(r"\1", _COMPACTED_FILE.sub(r"c-\1", _GENERATION.sub(r"\1", key)))


def _object_keys(body: str) -> str:
    """The object keys an SQS message names (S3 and EventBridge events, backfill messages), sorted."""
    keys = sorted({unquote_plus(key) for key in _BODY_KEY.findall(body)})
    return ",".join(keys) or hashlib.sha256(body.encode()).hexdigest()


def _s3_identity(request: Request) -> str:
    parts = urlsplit(request.path)
    query = parse_qs(parts.query, keep_blank_values=True)
    if "list-type" in query or "prefix" in query or "delimiter" in query:  # a listing: not its page or token
        resource = f"list {stable_key(query.get('prefix', [''])[0])} {query.get('delimiter', [''])[0]}"
    else:
        resource = " ".join(sorted(query))  # ?delete, ?uploads ... by name only
    write = "PUT-if" if request.method == "PUT" and request.conditional else request.method
    return f"s3 {write} {stable_key(unquote(parts.path))} {resource}".rstrip()


def _glue_identity(request: Request) -> str:
    """A Glue call by its table and the partition it names (each object's commit names its own); a batch of
    several partitions by its table only."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = {}
    values: set[str] = set()
    for name in ("PartitionInputList", "PartitionsToGet", "PartitionsToDelete", "Entries"):
        for entry in body.get(name, []):
            found = entry.get("Values") or entry.get("PartitionValueList") or []
            values.add("/".join(found))
    for name in ("PartitionValues", "PartitionValueList"):
        if body.get(name):
            values.add("/".join(body[name]))
    table = body.get("TableName") or body.get("Name") or ""
    # A batch of several partitions (a compaction's moves) holds whichever partitions that run took: timing.
    named = " ".join(sorted(values)) if len(values) <= 1 else "(several)"
    return f"glue {request.target.split('.', 1)[-1]} {table} {named} {body.get('Expression', '')}"


UNFAULTED_SQS = ("ReceiveMessage", "GetQueueAttributes", "GetQueueUrl")  # the event source mapping's polling


@dataclass
class NetworkFaults:
    """The proxy's decisions, each a pure function of (seed, identity, occurrence) (see ``decide``).

    An identity is what stays the same between two runs of one seed however their processes interleave: the
    service, the operation and the resource (``stable_key`` of an S3 key; a Glue table and the partitions named;
    the object keys an SQS message names, for deletes the message received under that receipt handle). Request
    bodies, receipt handles, message ids and timing never decide. ``forced``: kinds injected once each, into the
    first eligible request the seed would have let through, so every kind happens in every run."""

    seed: int
    rate: float
    enabled: bool = True
    forced: set[str] = field(default_factory=set)
    injected: Counter[str] = field(default_factory=Counter)
    forced_injected: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    retries: int = 0  # requests botocore sent again (amz-sdk-request: attempt > 1)
    receipts: dict[str, str] = field(default_factory=dict)  # receipt handle -> object keys (the poller's)
    journal: list[str] = field(default_factory=list)  # every fault: kind, occurrence, identity (faults.tsv)
    _seen: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def identity(self, request: Request) -> str | None:
        """What a decision is keyed on; None: never faulted (the poller's receives and queue depth reads)."""
        service = _service(request)
        if service == "s3":
            return _s3_identity(request)
        if service == "glue":
            return _glue_identity(request)
        operation = request.target.split(".", 1)[-1]
        if operation in UNFAULTED_SQS:
            return None
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            body = {}
        if operation.startswith("DeleteMessage"):
            handles = [body.get("ReceiptHandle", "")] + [e.get("ReceiptHandle", "") for e in body.get("Entries", [])]
            with self._lock:
                keys = sorted(self.receipts.get(h, "?") for h in handles if h)
            return f"sqs {operation} {','.join(keys)}"
        bodies = [body.get("MessageBody", "")] + [e.get("MessageBody", "") for e in body.get("Entries", [])]
        return f"sqs {operation} {_object_keys(' '.join(bodies))}"

    def decide(self, request: Request) -> Action:
        """Occurrence n of an identity meets the fault its draw names if the draws of occurrences 1..n all named
        one: faults come in a chain from an identity's first request (a retry meets its own, independent draw)
        and end at its first clean answer. Any interleaving of the same requests then meets the same faults."""
        identity = self.identity(request)
        with self._lock:
            self.requests += 1
            if "attempt=1;" not in request.headers.get("amz-sdk-request", "attempt=1;"):
                self.retries += 1
            if identity is None or not self.enabled:
                return FORWARD
            self._seen[identity] += 1
            occurrence = self._seen[identity]
        kind = None
        for n in range(1, occurrence + 1):
            kind = self._kind(request, _draw(self.seed, identity, n))
            if kind is None:
                break
        forced = kind is None
        kind = kind or self._forced(request)
        if kind is None:
            return FORWARD
        with self._lock:
            self.injected[kind] += 1
            self.journal.append(f"{kind}\t{'forced' if forced else occurrence}\t{identity}")
        return _action(kind, request)

    def _forced(self, request: Request) -> str | None:
        """The first eligible request of each forced kind (the seed let it through): exactly one of each."""
        service = _service(request)
        eligible = {
            "lost answer, conditional write": service == "s3" and request.method == "PUT" and request.conditional,
            "lost answer, write": service == "s3" and request.method == "PUT" and not request.conditional
            and request.path.startswith(f"/{LAKE_BUCKET}/"),
            "throttled": service == "s3" and request.method == "GET" and request.path.startswith(f"/{LOGS}/")
            and "?" not in request.path,
            "500": service == "glue",
            "connection reset": request.target == "AmazonSQS.SendMessageBatch",
        }
        with self._lock:
            for kind in sorted(self.forced):
                if eligible.get(kind):
                    self.forced.discard(kind)
                    self.forced_injected[kind] += 1
                    return kind
        return None

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


KILL_KINDS = ("killed before a write", "killed after a write (publish cut)")


class Killer:
    """Wraps the lake store's writes in a worker process: before a write, or right after one, the invocation may
    die. As the proxy's faults, a pure function of (seed, write, ``stable_key`` of its key, occurrence): occurrence
    n dies if the draws of occurrences 1..n all say so. Occurrences are counted across every container by
    claiming marker files (only for the few writes whose first draw kills: the others need no count).
    ``forced``: the first data file written in the run dies before its write, the first one after that dies
    after its write, each exactly once (claimed the same way)."""

    def __init__(self, seed: int, rate: float, markers: Path, forced: bool) -> None:
        self.seed, self.rate, self.markers, self.forced = seed, rate, markers, forced
        self.kills: Counter[str] = Counter()

    def install(self) -> None:
        from alblake.aws.s3 import S3Store

        for name in ("put_file", "put_bytes", "put_bytes_if", "delete"):
            setattr(S3Store, name, self._wrap(name, getattr(S3Store, name)))

    def _claim(self, name: str) -> bool:
        try:
            os.close(os.open(self.markers / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def decide(self, name: str, key: str) -> str | None:
        identity = f"{name} {stable_key(key)}"
        digest = hashlib.sha256(identity.encode()).hexdigest()[:24]
        occurrence = 1
        while (draw := _draw(self.seed, "kill", identity, occurrence)) < self.rate:
            if self._claim(f"{digest}-{occurrence}"):
                return KILL_KINDS[0] if draw < self.rate / 2 else KILL_KINDS[1]
            occurrence += 1
        if self.forced and name == "put_file" and key.startswith("alb_logs/") and key.endswith(".parquet"):
            for kind in KILL_KINDS:
                if not (self.markers / f"forced-{kind[:13]}").exists() and self._claim(f"forced-{kind[:13]}"):
                    return kind
        return None

    def _wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def write(store: Any, key: str, *args: Any, **kwargs: Any) -> Any:
            kind = self.decide(name, key)
            if kind == KILL_KINDS[0]:
                self.kills[kind] += 1
                raise FunctionKilled(f"killed before {name} {key}")
            result = original(store, key, *args, **kwargs)
            if kind == KILL_KINDS[1]:
                self.kills[kind] += 1
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


def _start_worker(function: str, environment: dict[str, str], log_dir: str, seed: int, kill_rate: float,
                  forced: bool) -> None:
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
    markers = Path(log_dir).parent / "kills"
    markers.mkdir(exist_ok=True)
    _KILLER = Killer(seed, kill_rate, markers, forced)
    _KILLER.install()
    _APP = _load_function(function)


@dataclass
class Outcome:
    failed_ids: list[str] | None  # None: the invocation died or raised (every message comes back)
    kills: Counter[str]
    error: str = ""


def _invoke(event: dict[str, Any]) -> Outcome:
    """One invocation of the container's handler."""
    from scripts.moto_lake import FakeContext

    assert _APP is not None and _KILLER is not None
    before = Counter(_KILLER.kills)
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
    fault_rate: float = 0.05  # per request identity, all kinds together (conditional writes lose answers more often)
    kill_rate: float = 0.01  # per store write identity inside a function
    corrupt: int = 8
    late: int = 0  # objects delivered after their hour was compacted (0: 3 %); half of them through a backfill
    ingest_workers: int = 2
    invocations_per_container: int = 25
    visibility: int = 12  # seconds: a failed message comes back after this (longer than a batch takes)
    max_receives: int = 5  # the queue's maxReceiveCount
    batch_size: int = 5  # messages per invocation (IngestBatchSize)
    batch: int = 60  # objects delivered per round
    compact_every: int = 8  # delivery rounds between two scheduled compaction rounds (the schedule, compressed)
    max_queue_age: float = 900.0  # seconds a message may wait in the ingest queue (the age alarm, compressed)
    force_each_kind: bool = True  # every kind of fault at least once (see NetworkFaults.forced, Killer)
    stall_limit: float = 600.0  # seconds without a finished invocation before the run stops as hung

    @classmethod
    def small(cls, seed: int) -> Settings:
        """The variant `make test` runs (well under a minute of the run itself)."""
        return cls(objects=42, seed=seed, corrupt=1, late=4, kill_rate=0.03, visibility=4, max_receives=2,
                   batch=14, compact_every=1, max_queue_age=300.0)


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
    backfill_runs: int = 0
    deliveries: int = 0
    max_queue_age: float = 0.0
    oldest_message: str = ""
    mid_run: str = ""


InFlight = list[tuple[Any, list[dict[str, Any]]]]


class Chaos:
    def __init__(self, settings: Settings, work: Path, moto: str, proxy_url: str, faults: NetworkFaults) -> None:
        self.s, self.work, self.moto, self.proxy_url, self.faults = settings, work, moto, proxy_url, faults
        self.direct = _clients(moto)
        self.via_proxy = _clients(proxy_url)
        self.figures = Figures()
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        late = settings.late or max(2, settings.objects * 3 // 100)
        self.objects = make_objects(settings.objects, settings.seed, settings.corrupt, late)
        self.queue_url = ""
        self.dlq_url = ""
        self.mid_run_violations: list[str] = []
        self._compacting: list[Any] = []
        self._progress = self._reported = time.monotonic()

    # ------------------------------------------------------------------------------- the stack, in moto

    def deploy(self) -> None:
        s3, sqs, glue = self.direct["s3"], self.direct["sqs"], self.direct["glue"]
        for bucket in (LOGS, LAKE_BUCKET):
            s3.create_bucket(Bucket=bucket)
        glue.create_database(DatabaseInput={"Name": DATABASE})
        glue.create_table(DatabaseName=DATABASE, TableInput=glue_table_input(f"{LAKE}/alb_logs/"))
        glue.create_table(DatabaseName=DATABASE, TableInput=rollup_glue_table_input(f"{LAKE}/{ROLLUP_TABLE_NAME}/"))
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
        # Containers start from a fork server, not by forking this process: this process runs threads (the fault
        # proxy, the pools' handlers, pytest-xdist's channel), and a child forked while one of them held a lock
        # (logging, a connection pool) hung for good: a small run under load once waited 600 s on such a batch.
        context = multiprocessing.get_context("forkserver")
        kill_rate = self.s.kill_rate if function == "ingest" else self.s.kill_rate / 4
        forced = self.s.force_each_kind and function == "ingest"
        return context.Pool(
            processes,
            initializer=_start_worker,
            initargs=(function, self.environment(function, grace_minutes), str(self.logs), self.s.seed, kill_rate,
                      forced),
            maxtasksperchild=self.s.invocations_per_container,
        )

    # ------------------------------------------------------------------------------- delivery (ALB)

    def deliver(self, objects: list[LogObject]) -> None:
        for item in objects:
            self.direct["s3"].put_object(Bucket=LOGS, Key=item.key, Body=item.body)
            self.figures.deliveries += 1

    # ------------------------------------------------------------------------------- the event source mapping

    def poll_once(self, ingest: Any, in_flight: InFlight) -> bool:
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
        except Exception:  # the poller's own call failed: it polls again
            return True
        if not messages:
            time.sleep(0.05)  # the event source mapping long-polls; an empty answer is not retried at once
            return False
        now = time.time() * 1000
        for m in messages:
            self.faults.receipts[m["ReceiptHandle"]] = _object_keys(m["Body"])
            age = (now - int(m.get("Attributes", {}).get("SentTimestamp", now))) / 1000
            if age > self.figures.max_queue_age:
                self.figures.max_queue_age, self.figures.oldest_message = age, _object_keys(m["Body"])
        event = {"Records": [
            {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
             "attributes": m.get("Attributes", {}), "eventSource": "aws:sqs", "awsRegion": REGION,
             "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:ingest"}
            for m in messages
        ]}
        in_flight.append((ingest.apply_async(_invoke, (event,)), messages))
        return True

    def watch(self, in_flight: InFlight) -> None:
        """Every minute a line of progress (a long run says it moves); a run in which no invocation ended for
        ``stall_limit`` seconds stops with the batches that hang, instead of waiting for ever."""
        now = time.monotonic()
        if now - self._reported > 60:
            self._reported = now
            self.phase(f"  {self.figures.invocations:,} ingest invocations, {self.figures.compactions} compactions; "
                       f"queue {self._queue_total(self.queue_url):,}, in flight {len(in_flight)}")
        if now - self._progress > self.s.stall_limit:
            hung = [_object_keys(m["Body"]) for _, messages in in_flight for m in messages]
            raise AssertionError(f"no invocation ended for {self.s.stall_limit:.0f} s (hung batches: {hung[:5]}, "
                                 f"compactions running: {len(self._compacting)}); see the worker logs")

    def _finish(self, outcome: Outcome, messages: list[dict[str, Any]]) -> None:
        self._progress = time.monotonic()
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

    def keep_up(self, ingest: Any, in_flight: InFlight, compaction: Any) -> None:
        """Poll until less than half a delivery round waits in the queue: ALB delivers every five minutes, and
        the function keeps up (the next round is delivered when this one is mostly taken)."""
        checked = 0.0
        while True:
            self.poll_once(ingest, in_flight)
            self.collect_compactions()
            self.watch(in_flight)
            if time.monotonic() - checked > 0.5:
                checked = time.monotonic()
                if self._queue_visible(self.queue_url) <= self.s.batch // 2:
                    return

    def drain(self, ingest: Any, in_flight: InFlight | None = None) -> None:
        """Poll until the queue is empty (also of messages in flight) and every batch has finished."""
        in_flight = [] if in_flight is None else in_flight
        while True:
            received = self.poll_once(ingest, in_flight)
            self.collect_compactions()
            self.watch(in_flight)
            if received or in_flight:
                continue
            if self._queue_total(self.queue_url) == 0:
                return
            time.sleep(0.2)

    def _queue_total(self, url: str) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.direct["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(attributes.get(name, 0)) for name in names)

    def _queue_visible(self, url: str) -> int:
        name = "ApproximateNumberOfMessages"
        attributes = self.direct["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=[name])["Attributes"]
        return int(attributes.get(name, 0))

    # ------------------------------------------------------------------------------- compaction

    def start_compactions(self, compaction: Any, ingest: Any = None, in_flight: InFlight | None = None) -> None:
        """Two scheduled compaction invocations at once, after the last two ended (ingestion goes on meanwhile):
        the number of compaction runs follows from the schedule, not from timing."""
        while self._compacting:
            if ingest is not None and in_flight is not None:
                self.poll_once(ingest, in_flight)
                self.watch(in_flight)
            else:
                time.sleep(0.05)
            self.collect_compactions()
        self._compacting = [compaction.apply_async(_invoke, ({},)) for _ in range(2)]

    def collect_compactions(self, *, wait: bool = False) -> None:
        for job in [j for j in self._compacting if wait or j.ready()]:
            self._compacting.remove(job)
            self._count_compaction(job.get(timeout=self.s.stall_limit))  # a dead container: a TimeoutError

    def _count_compaction(self, outcome: Outcome) -> None:
        self._progress = time.monotonic()
        self.figures.compactions += 1
        self.figures.kills.update(outcome.kills)
        if outcome.failed_ids is None:
            self.figures.compaction_errors += 1

    def final_compaction(self) -> None:
        """After the grace period: compaction runs (faults still on) until one reports no error. The grace period's
        end lets it delete every retired file at once, thousands of writes never made before, so several runs die
        on the way; each death is at a write the next run passes (a fault chain ends at its first clean answer), so
        every run gets further."""
        with self.pool("compact", 1, grace_minutes=0) as compaction:
            for _ in range(60):
                outcome = compaction.apply_async(_invoke, ({},)).get(timeout=self.s.stall_limit)
                self._count_compaction(outcome)
                if outcome.failed_ids is not None:
                    return
        raise AssertionError("the last compaction kept failing (see the compact-*.log files)")

    # ------------------------------------------------------------------------------- the CLI and redrive

    def _cli(self, name: str, arguments: list[str]) -> None:
        """An ``alblake`` command through the faults, run again until it reports success (both are resumable)."""
        environment = {**os.environ, **self.environment("ingest", 1), "PYTHONPATH": str(ROOT)}
        for attempt in range(1, 11):
            done = subprocess.run([sys.executable, "-c", CLI, *arguments], env=environment, capture_output=True,
                                  text=True, cwd=self.work)
            (self.logs / f"cli-{name}-{attempt}.log").write_text(done.stdout + done.stderr)
            if name == "ingest":
                self.figures.cli_runs += 1
            else:
                self.figures.backfill_runs += 1
            if done.returncode == 0:
                return
        raise AssertionError(f"alblake {name} kept failing (see the cli-{name}-*.log files)")

    def cli_ingest(self) -> None:
        """``alblake ingest s3://.../history/`` into the same lake."""
        self._cli("ingest", ["ingest", f"s3://{LOGS}/{CLI_PREFIX}", "--lake", LAKE, "--glue-database", DATABASE,
                             "--quiet", "--jobs", "1"])

    def backfill(self) -> None:
        """``alblake backfill s3://.../backfill/ --queue URL``: its SendMessageBatch calls meet the faults."""
        self._cli("backfill", ["backfill", f"s3://{LOGS}/{BACKFILL_PREFIX}", "--queue", self.queue_url,
                               "--lake", LAKE, "--state", str(self.work / "backfill-state.json")])

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
        on_time = [o for o in self.objects if not o.late and not o.via_cli]
        with self.pool("ingest", self.s.ingest_workers) as ingest, self.pool("compact", 2) as compaction:
            in_flight: InFlight = []
            for number, start in enumerate(range(0, len(on_time), self.s.batch), start=1):
                self.deliver(on_time[start : start + self.s.batch])
                self.keep_up(ingest, in_flight, compaction)
                if number % self.s.compact_every == 0:
                    self.start_compactions(compaction, ingest, in_flight)
            self.phase("delivered on time; draining")
            self.drain(ingest, in_flight)
            self.collect_compactions(wait=True)
            self.phase("mid-run check")
            self.mid_run_violations = mid_run_check(self)
            self.phase("the CLI ingests its objects while compaction runs; late and second deliveries; a backfill")
            self.deliver([o for o in self.objects if o.via_cli or o.backfilled])  # no notification for these
            cli = threading.Thread(target=self.cli_ingest)
            cli.start()  # the CLI writes into the lake while the functions compact it
            self.start_compactions(compaction)
            self.deliver([o for o in self.objects if (o.late and not o.backfilled) or o.twice])
            self.backfill()
            self.drain(ingest)
            cli.join()
            self.collect_compactions(wait=True)
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
        (self.work / "faults.tsv").write_text("".join(f"{line}\n" for line in sorted(self.faults.journal)))
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
    rollup: str = ""

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
            f"{sum(o.late for o in objects)} late ({sum(o.backfilled for o in objects)} of them backfilled), "
            f"{sum(o.twice for o in objects)} delivered twice, "
            f"{sum(o.corrupt for o in objects)} corrupt, {sum(o.junk > 0 for o in objects)} with junk lines); "
            f"{self.expected_rows:,} valid lines",
            f"requests       {self.faults.requests:,} through the fault proxy; botocore retried "
            f"{self.faults.retries:,}",
            "faults         " + ", ".join(f"{kind}: {n:,}" for kind, n in sorted(kinds.items()))
            + (" (each kind forced once, included)" if self.faults.forced_injected else ""),
            f"invocations    ingest {f.invocations:,} (errors: {dict(sorted(f.invocation_errors.items())) or 0}), "
            f"compaction {f.compactions} ({f.compaction_errors} failed), CLI ingest runs {f.cli_runs}, "
            f"backfill runs {f.backfill_runs}",
            f"dead letters   {f.redriven:,} message(s) redriven (moto's stand-in for the move task); "
            f"left: {len(self.violations_free_dead_letters)} corrupt object(s)",
            f"queue age      oldest message received after {f.max_queue_age:,.0f} s "
            f"(limit {self.max_queue_age:,.0f} s)",
            f"mid-run        {f.mid_run}",
            f"rollup         {self.rollup}",
            "metrics        " + ", ".join(f"{name} {value:,.0f}" for name, value in sorted(self.metrics.items())
                                          if name not in ("LogLagSeconds", "DurationSeconds")),
            f"wall time      {time.monotonic() - f.started:,.0f} s",
            f"tally          Athena: {athena_lost} lost / {athena_dup} duplicated; "
            f"local reader: {local_lost} lost / {local_dup} duplicated",
        ]
        return out + [f"VIOLATION      {v}" for v in self.violations]

    violations_free_dead_letters: list[str] = field(default_factory=list)
    max_queue_age: float = 0.0


def _column_under(s3: Any, bucket: str, prefix: str, column: str) -> Iterator[Any]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".parquet") and "/_" not in item["Key"]:
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                yield from pq.read_table(pa.BufferReader(body), columns=[column]).column(0).to_pylist()


def _rows_under(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    return _column_under(s3, bucket, prefix, "request_url")


def check(chaos: Chaos) -> Report:
    """The invariants, read from moto directly (no faults)."""
    s3, glue = chaos.direct["s3"], chaos.direct["glue"]
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
    local = Counter(_with_lake(chaos.moto, _local_rows))
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
    # 6. the queues as the age and dead-letter alarms see them: nothing left waiting, no message waited too long
    left = chaos._queue_total(chaos.queue_url)
    if left:
        violations.append(f"{left} message(s) still in the ingest queue at the end")
    if chaos.figures.max_queue_age > chaos.s.max_queue_age:
        violations.append(f"a message waited {chaos.figures.max_queue_age:,.0f} s in the ingest queue (over "
                          f"{chaos.s.max_queue_age:,.0f} s: the age alarm would fire): {chaos.figures.oldest_message}")
    # 7. the rollup: its sums equal the curated table's, in the lake and in what Athena reads
    rollup, rollup_violations = _rollup_figures(chaos, s3, glue, expected_rows)
    violations += rollup_violations + chaos.mid_run_violations
    report = Report(expected_rows, athena, local, violations, metrics, chaos.figures, chaos.faults, objects, rollup)
    report.violations_free_dead_letters = [key for key in dead if key not in stray]
    report.max_queue_age = chaos.s.max_queue_age
    for rows, reader in ((athena, "Athena"), (local, "the local reader")):
        lost, duplicated = report.tally(rows)
        if lost or duplicated:
            violations.append(f"{reader}: {lost} lost, {duplicated} duplicated")
    return report


def _with_lake(endpoint: str, read: Callable[[Any], Any]) -> Any:
    """``read(lake)`` of the lake in moto, read directly (no faults)."""
    from alblake.aws.session import forget_clients
    from alblake.locations import open_lake_at

    previous = os.environ.get("AWS_ENDPOINT_URL")
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION=REGION)
    forget_clients()
    try:
        return read(open_lake_at(LAKE))
    finally:
        if previous is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = previous
        forget_clients()


def _local_rows(lake: Any) -> list[str]:
    from alblake.analysis import connect

    con = connect(lake)
    try:
        return [row[0] for row in con.sql("SELECT request_url FROM alb_logs").fetchall()]
    finally:
        con.close()


def _rollup_check(lake: Any) -> Any:
    from alblake.rollup.check import rollup_check

    return rollup_check(lake)


def mid_run_check(chaos: Chaos) -> list[str]:
    """After the on-time objects drained (faults on, nothing running): no row twice or unknown in the local
    reader (objects waiting in the dead-letter queue may still be missing), the rollup's sums equal the curated
    table's, and the queue is empty. One read of the lake."""
    violations = []
    rows = Counter(_with_lake(chaos.moto, _local_rows))
    expected = {url for o in chaos.objects for url in o.urls}
    twice = sum(n - 1 for n in rows.values() if n > 1)
    unknown = sum(n for url, n in rows.items() if url not in expected)
    if twice or unknown:
        violations.append(f"mid-run: {twice} row(s) read twice, {unknown} row(s) of no object")
    check = _with_lake(chaos.moto, _rollup_check)
    if check.mismatches:
        violations.append(f"mid-run: the rollup's sums differ from the curated table's in {check.mismatched}")
    if chaos._queue_total(chaos.queue_url):
        violations.append("mid-run: the ingest queue is not empty after draining")
    chaos.figures.mid_run = (f"{sum(rows.values()):,} rows, none twice or unknown: {not (twice or unknown)}; rollup "
                             f"{check.requests:,} requests in {check.partitions} partition-hours, "
                             f"{check.mismatches} mismatched")
    return violations


def _rollup_figures(chaos: Chaos, s3: Any, glue: Any, expected_rows: int) -> tuple[str, list[str]]:
    """The rollup against the curated table in the lake (``alblake.rollup.check``), and the requests Athena reads
    of it (every rollup file under every Glue partition's Location): one per valid line."""
    violations = []
    check = _with_lake(chaos.moto, _rollup_check)
    if check.mismatches:
        violations.append(f"the rollup's sums differ from the curated table's in {check.mismatched}")
    athena = 0
    partitions = []
    for page in glue.get_paginator("get_partitions").paginate(DatabaseName=DATABASE, TableName=ROLLUP_TABLE_NAME):
        partitions += page["Partitions"]
    for partition in partitions:
        prefix = partition["StorageDescriptor"]["Location"].removeprefix(f"s3://{LAKE_BUCKET}/")
        athena += sum(_column_under(s3, LAKE_BUCKET, prefix, "requests"))
    if athena != expected_rows or check.requests != expected_rows:
        violations.append(f"rollup requests: {check.requests:,} in the lake, {athena:,} read by Athena; "
                          f"{expected_rows:,} valid lines")
    figures = (f"{check.rows:,} rows, {check.requests:,} requests (Athena: {athena:,}) in {check.partitions} "
               f"partition-hours; {check.mismatches} partition-hour(s) whose sums differ from the curated table's")
    return figures, violations


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
        forced = {"lost answer, conditional write", "lost answer, write", "throttled", "500", "connection reset"}
        faults = NetworkFaults(settings.seed, settings.fault_rate, forced=forced if settings.force_each_kind else set())
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
