"""Metrics ALB cannot publish, derived from its logs by the ingest function, in CloudWatch's embedded metric format.

ALB's own CloudWatch metrics count requests, 5xx and target response time per load balancer and target group.
The logs also say which route failed, why the load balancer answered itself (``error_reason``), what desync
mitigation thought of a request, which TLS protocol it used and which client sent it. For every log object it
ingests, the function writes one EMF document per load balancer and log minute (``_aws.Timestamp``: the start
of that minute, so a graph lines up with ALB's metrics) and one per ELB-generated 5xx reason:

=====================  =======  ============================================================================
metric                 unit     value, for the log minute (of this object: one load balancer node)
=====================  =======  ============================================================================
WorstRoute5xxPercent   Percent  largest share of 5xx among route templates with at least ``ROUTE_MIN`` requests
                                (the route is the document's ``WorstRoute`` field; 0 when none qualifies)
DesyncAmbiguous        Count    requests desync mitigation classified Ambiguous
DesyncSevere           Count    requests classified Severe
DeprecatedTlsRequests  Count    requests over TLSv1 or TLSv1.1 (deprecated by RFC 8996)
TopClientPercent       Percent  largest share of the minute's requests from one client address, among minutes
                                of at least ``CLIENT_MIN`` requests (the address is the ``TopClient`` field)
ElbGenerated5xx        Count    5xx the load balancer answered itself (no target status), by ``ErrorReason``
=====================  =======  ============================================================================

Dimensions (bounded): the first five per ``LoadBalancer`` and with no dimension (fleet-wide, what the alarms
watch); ``ElbGenerated5xx`` per ``LoadBalancer`` x ``ErrorReason``, per ``ErrorReason`` and with none (the alarm's
total). ``ErrorReason`` takes
one of the 46 codes AWS documents for the field, ``None`` (no code logged) or ``Other`` (anything else, kept
in the document's ``ErrorReasonLogged`` field): at most 48 values. Routes and clients are never dimensions.

Opt-in: ``LOG_METRICS=true`` (template parameter ``EnableLogMetrics``). Minutes older than
``LOG_METRICS_MAX_AGE_MINUTES`` (default 180) are skipped: a backfill must not page anyone, and CloudWatch takes
data points at most two weeks old. Metrics are at least once: an object delivered twice counts twice (the lake
holds its rows once; these documents are written by every successful ingest of it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from alblake.lake.staged import StagedBatch, StagedObject
from alblake.ports import CommitResult, Lake
from alblake.rollup.routes import route_templates
from alblake.service.config import minutes_setting

NAMESPACE = "AlbLake/AccessLogs"
ROUTE_MIN = 20
CLIENT_MIN = 100
DEFAULT_MAX_AGE_MINUTES = 180.0
DEPRECATED_TLS = ("TLSv1", "TLSv1.1")
COLUMNS = ("time", "elb", "request_url", "elb_status_code", "target_status_code", "lambda_error_reason",
           "classification", "ssl_protocol", "client_ip")

# error_reason codes AWS documents (Elastic Load Balancing user guide, "Access log entries", "Error reason codes":
# authentication, weighted target groups, Lambda targets, AWS WAF)
ERROR_REASONS = frozenset({
    "AuthInvalidCookie", "AuthInvalidGrantError", "AuthInvalidIdToken", "AuthInvalidStateParam",
    "AuthInvalidTokenResponse", "AuthInvalidUserinfoResponse", "AuthMissingCodeParam", "AuthMissingHostHeader",
    "AuthMissingStateParam", "AuthTokenEpRequestFailed", "AuthTokenEpRequestTimeout", "AuthUnhandledException",
    "AuthUserinfoEpRequestFailed", "AuthUserinfoEpRequestTimeout", "AuthUserinfoResponseSizeExceeded",
    "AWSALBTGCookieInvalid", "WeightedTargetGroupsUnhandledException",
    "LambdaAccessDenied", "LambdaBadRequest", "LambdaConnectionTimeout", "LambdaEC2AccessDeniedException",
    "LambdaEC2ThrottledException", "LambdaEC2UnexpectedException", "LambdaENILimitReachedException",
    "LambdaInvalidResponse", "LambdaInvalidRuntimeException", "LambdaInvalidSecurityGroupIDException",
    "LambdaInvalidSubnetIDException", "LambdaInvalidZipFileException", "LambdaKMSAccessDeniedException",
    "LambdaKMSDisabledException", "LambdaKMSInvalidStateException", "LambdaKMSNotFoundException",
    "LambdaRequestTooLarge", "LambdaResourceNotFound", "LambdaResponseTooLarge", "LambdaServiceException",
    "LambdaSubnetIPAddressLimitReachedException", "LambdaThrottling", "LambdaUnhandled",
    "LambdaUnhandledException",
    "WAFConnectionError", "WAFConnectionTimeout", "WAFResponseReadTimeout", "WAFServiceError",
    "WAFUnhandledException",
})
NO_REASON, OTHER_REASON = "None", "Other"
_BASE_METRICS = (
    ("WorstRoute5xxPercent", "Percent"), ("DesyncAmbiguous", "Count"), ("DesyncSevere", "Count"),
    ("DeprecatedTlsRequests", "Count"), ("TopClientPercent", "Percent"),
)

Emit = Callable[[str], None]


@dataclass(frozen=True)
class LogMetricsSettings:
    enabled: bool = False
    namespace: str = NAMESPACE
    max_age: timedelta = timedelta(minutes=DEFAULT_MAX_AGE_MINUTES)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LogMetricsSettings:
        enabled = env.get("LOG_METRICS", "").strip().lower() in {"1", "true", "yes", "on"}
        age = minutes_setting(env, "LOG_METRICS_MAX_AGE_MINUTES", DEFAULT_MAX_AGE_MINUTES)
        return cls(enabled, env.get("LOG_METRICS_NAMESPACE") or NAMESPACE, timedelta(minutes=age))


def error_reason_dimension(reason: str | None) -> str:
    if reason is None:
        return NO_REASON
    return reason if reason in ERROR_REASONS else OTHER_REASON


def _directive(namespace: str, dimensions: list[list[str]], metrics: Iterable[tuple[str, str]]) -> dict[str, Any]:
    return {"Namespace": namespace, "Dimensions": dimensions,
            "Metrics": [{"Name": name, "Unit": unit} for name, unit in metrics]}


def _share(counts: dict[Any, list[int]], minimum: int, index: int) -> tuple[float, Any]:
    """The largest share (percent) of ``counts[key][index]`` in ``counts[key][0]`` among keys with at least
    ``minimum`` in ``[0]``, and its key (0 and None when no key qualifies); ties: the smaller key."""
    best: tuple[float, Any] = (0.0, None)
    for key in sorted(counts, key=str):
        total = counts[key][0]
        if total >= minimum:
            share = 100.0 * counts[key][index] / total
            if share > best[0]:
                best = (share, key)
    return best


def metric_documents(rows: pa.Table, settings: LogMetricsSettings, now: datetime) -> list[dict[str, Any]]:
    """The EMF documents of some log rows (``COLUMNS`` of the curated schema), by load balancer and minute."""
    if rows.num_rows == 0:
        return []
    minutes = pc.floor_temporal(rows["time"], unit="minute").to_pylist()
    routes = route_templates(rows["request_url"]).to_pylist()
    columns = {name: rows[name].to_pylist() for name in COLUMNS if name in rows.column_names}
    oldest = now - settings.max_age
    groups: dict[tuple[str, datetime], list[int]] = {}
    for index, (elb, minute) in enumerate(zip(columns["elb"], minutes, strict=True)):
        if minute is not None and minute >= oldest:
            groups.setdefault((elb or "-", minute), []).append(index)
    documents = []
    for (elb, minute), members in sorted(groups.items()):
        timestamp = int(minute.timestamp() * 1000)
        route_counts: dict[str, list[int]] = {}
        client_counts: dict[str, list[int]] = {}
        reasons: dict[str, int] = {}
        logged: dict[str, set[str]] = {}
        ambiguous = severe = deprecated = 0
        for i in members:
            status = columns["elb_status_code"][i] or 0
            is_5xx = 500 <= status <= 599
            counts = route_counts.setdefault(routes[i] or "-", [0, 0])
            counts[0] += 1
            counts[1] += is_5xx
            client_counts.setdefault(columns["client_ip"][i] or "-", [0])[0] += 1
            classification = columns["classification"][i]
            ambiguous += classification == "Ambiguous"
            severe += classification == "Severe"
            deprecated += columns["ssl_protocol"][i] in DEPRECATED_TLS
            if is_5xx and columns["target_status_code"][i] is None:
                raw = columns["lambda_error_reason"][i]
                reason = error_reason_dimension(raw)
                reasons[reason] = reasons.get(reason, 0) + 1
                if reason == OTHER_REASON and raw is not None:
                    logged.setdefault(reason, set()).add(raw)
        worst_share, worst_route = _share(route_counts, ROUTE_MIN, 1)
        total = len(members)
        top_client = max(sorted(client_counts), key=lambda c: client_counts[c][0])
        client_share = 100.0 * client_counts[top_client][0] / total if total >= CLIENT_MIN else 0.0
        base: dict[str, Any] = {
            "_aws": {"Timestamp": timestamp, "CloudWatchMetrics": [
                _directive(settings.namespace, [["LoadBalancer"], []], _BASE_METRICS)]},
            "LoadBalancer": elb,
            "WorstRoute5xxPercent": round(worst_share, 3),
            "DesyncAmbiguous": ambiguous,
            "DesyncSevere": severe,
            "DeprecatedTlsRequests": deprecated,
            "TopClientPercent": round(client_share, 3),
            "Requests": total,
        }
        if worst_route is not None:
            base["WorstRoute"] = worst_route
            base["WorstRouteRequests"] = route_counts[worst_route][0]
        if client_share:
            base["TopClient"] = top_client
        documents.append(base)
        for reason, count in sorted(reasons.items()):
            document: dict[str, Any] = {
                "_aws": {"Timestamp": timestamp, "CloudWatchMetrics": [
                    _directive(settings.namespace, [["LoadBalancer", "ErrorReason"], ["ErrorReason"], []],
                               [("ElbGenerated5xx", "Count")])]},
                "LoadBalancer": elb,
                "ErrorReason": reason,
                "ElbGenerated5xx": count,
            }
            if reason in logged:
                document["ErrorReasonLogged"] = sorted(logged[reason])[:10]
            documents.append(document)
    return documents


def _staged_rows(paths: Iterable[Path]) -> pa.Table:
    tables = [pq.read_table(path, columns=[c for c in COLUMNS if c in pq.read_schema(path).names]) for path in paths]
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return pa.table({})
    return pa.concat_tables(tables, promote_options="default")


class LogMetricsLake:
    """A ``Lake`` that writes the log-derived metrics of each object it commits, once the commit succeeded.

    ``commit_batch`` writes none: only the command line commits batches (``alblake ingest`` of small local objects),
    and the functions, which publish metrics, commit one object at a time (``commit``). A batch committed through
    this wrapper is committed without metrics. Everything else is the wrapped lake's (``__getattr__``)."""

    def __init__(self, lake: Lake, settings: LogMetricsSettings, *, emit: Emit = print,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.lake = lake
        self.settings = settings
        self.emit = emit
        self.clock = clock or (lambda: datetime.now(UTC))

    def commit(self, staged: StagedObject) -> CommitResult:
        documents = self._documents([d.path for d in staged.data])  # the staged files are gone after the commit
        result = self.lake.commit(staged)
        for document in documents:
            self.emit(json.dumps(document, separators=(",", ":")))
        return result

    def commit_batch(self, batch: StagedBatch) -> list[CommitResult]:
        return self.lake.commit_batch(batch)  # no metrics: see the class docstring

    def visible_files(self, table: str | None = None) -> Sequence[str]:
        if table is None:
            return self.lake.visible_files()
        return self.lake.visible_files(table=table)  # type: ignore[call-arg]  # a lake with derived tables

    def staging_dir(self) -> Path:
        return self.lake.staging_dir()

    def _documents(self, paths: list[Path]) -> list[dict[str, Any]]:
        rows = _staged_rows(paths)
        if rows.num_rows == 0 or "time" not in rows.column_names:
            return []
        return metric_documents(rows, self.settings, self.clock())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lake, name)


def with_log_metrics(lake: Lake, env: Mapping[str, str] | None = None, *, emit: Emit = print) -> Lake:
    """``lake`` writing log-derived metrics (EMF on stdout) when ``LOG_METRICS`` is on; else ``lake`` itself."""
    import os

    settings = LogMetricsSettings.from_env(os.environ if env is None else env)
    if not settings.enabled:
        return lake
    return LogMetricsLake(lake, settings, emit=emit)

