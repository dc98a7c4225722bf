"""Run a named query on Athena (the deployed Glue table) and return it as an Arrow table like the local run.

StartQueryExecution, then GetQueryExecution polled with exponential backoff until the query ends (SUCCEEDED,
FAILED or CANCELLED), then GetQueryResults paginated. Athena returns every value as text (``VarCharValue``,
absent for NULL) with the column types in ``ResultSetMetadata.ColumnInfo``; values are typed back from those
so the CLI prints the same table and CSV as for the local lake. The first row of a SELECT's first page is the
header and is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError

from alblake.errors import ServiceError

DEFAULT_DATABASE = "alblake"
_DONE = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


class AthenaQueryError(ServiceError):
    """The query could not run, failed or was cancelled (the message says which and why)."""


def _timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text.removesuffix(" UTC"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Athena (Trino) type name -> (Arrow type, converter from the text Athena returns)
_TYPES: dict[str, tuple[pa.DataType, Callable[[str], Any]]] = {
    "tinyint": (pa.int64(), int),
    "smallint": (pa.int64(), int),
    "integer": (pa.int64(), int),
    "int": (pa.int64(), int),
    "bigint": (pa.int64(), int),
    "double": (pa.float64(), float),
    "float": (pa.float64(), float),
    "real": (pa.float64(), float),
    "boolean": (pa.bool_(), lambda t: t.lower() == "true"),
    "date": (pa.date32(), date.fromisoformat),
    "timestamp": (pa.timestamp("us", tz="UTC"), _timestamp),
    "timestamp with time zone": (pa.timestamp("us", tz="UTC"), _timestamp),
}


def _column(kind: str, values: list[str | None]) -> pa.Array:
    base = kind.lower().split("(", 1)[0].strip()
    if base == "decimal":
        scale = int(kind.split(",")[1].rstrip(")")) if "," in kind else 0
        if scale == 0:
            return pa.array([None if v is None else int(Decimal(v)) for v in values], pa.int64())
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    arrow_type, convert = _TYPES.get(base, (pa.string(), str))
    return pa.array([None if v is None else convert(v) for v in values], arrow_type)


def results_table(column_info: list[dict[str, Any]], rows: list[list[str | None]]) -> pa.Table:
    """Typed Arrow table from Athena's column metadata and text rows."""
    names = [str(c["Name"]) for c in column_info]
    columns = [_column(str(c.get("Type", "varchar")), [r[i] for r in rows]) for i, c in enumerate(column_info)]
    return pa.table(columns, names=names) if names else pa.table({})


@dataclass
class AthenaRunner:
    client: Any
    database: str = DEFAULT_DATABASE
    workgroup: str | None = None
    output_location: str | None = None
    timeout_seconds: float = 600.0
    first_poll_seconds: float = 0.2
    max_poll_seconds: float = 5.0
    sleep: Callable[[float], None] = time.sleep

    def run(self, sql: str) -> pa.Table:
        try:
            execution_id = self._start(sql)
            self._wait(execution_id)
            return self._results(execution_id)
        except (ClientError, BotoCoreError) as exc:
            raise AthenaQueryError(f"Athena: {exc}") from exc

    def _start(self, sql: str) -> str:
        params: dict[str, Any] = {"QueryString": sql, "QueryExecutionContext": {"Database": self.database}}
        if self.workgroup:
            params["WorkGroup"] = self.workgroup
        if self.output_location:
            params["ResultConfiguration"] = {"OutputLocation": self.output_location}
        return str(self.client.start_query_execution(**params)["QueryExecutionId"])

    def _wait(self, execution_id: str) -> None:
        waited = 0.0
        delay = self.first_poll_seconds
        while True:
            execution = self.client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
            status = execution.get("Status", {})
            state = status.get("State", "")
            if state == "SUCCEEDED":
                return
            if state in _DONE:
                reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get("ErrorMessage")
                verb = "failed" if state == "FAILED" else "was cancelled"
                raise AthenaQueryError(f"Athena query {execution_id} {verb}" + (f": {reason}" if reason else ""))
            if waited >= self.timeout_seconds:
                self.client.stop_query_execution(QueryExecutionId=execution_id)
                raise AthenaQueryError(
                    f"Athena query {execution_id} still {state or 'pending'} after {self.timeout_seconds:.0f} s: "
                    "stopped it"
                )
            self.sleep(delay)
            waited += delay
            delay = min(delay * 2, self.max_poll_seconds)

    def _pages(self, execution_id: str) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            params: dict[str, Any] = {"QueryExecutionId": execution_id}
            if token:
                params["NextToken"] = token
            page: dict[str, Any] = self.client.get_query_results(**params)
            yield page
            token = page.get("NextToken")
            if not token:
                return

    def _results(self, execution_id: str) -> pa.Table:
        column_info: list[dict[str, Any]] = []
        rows: list[list[str | None]] = []
        for number, page in enumerate(self._pages(execution_id)):
            result_set = page.get("ResultSet", {})
            column_info = column_info or result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
            page_rows = [[d.get("VarCharValue") for d in r.get("Data", [])] for r in result_set.get("Rows", [])]
            if number == 0 and page_rows and page_rows[0] == [c["Name"] for c in column_info]:
                page_rows = page_rows[1:]  # a SELECT's header row
            rows.extend(page_rows)
        return results_table(column_info, rows)


def athena_runner(*, workgroup: str | None, database: str | None) -> AthenaRunner:
    """A runner with this process's Athena client (standard AWS configuration)."""
    from alblake.aws.session import client

    return AthenaRunner(client("athena"), database=database or DEFAULT_DATABASE, workgroup=workgroup)
