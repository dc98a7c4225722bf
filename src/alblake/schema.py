"""The one schema of the curated ALB log table.

Every consumer derives from this module: the Arrow schema used to write Parquet, the Glue column list in
``template.yaml`` (checked by a test), the Athena DDL in ``sql/`` (checked by a test) and the parser's field
positions. Column names follow the AWS-documented Athena table for ALB logs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TABLE_NAME = "alb_logs"


@dataclass(frozen=True)
class Column:
    name: str
    arrow_type: pa.DataType
    comment: str


_TS = pa.timestamp("us", tz="UTC")

COLUMNS: tuple[Column, ...] = (
    Column("type", pa.string(), "http, https, h2, grpcs, ws, wss"),
    Column("time", _TS, "time the response was generated (UTC)"),
    Column("elb", pa.string(), "load balancer resource id: app/name/id"),
    Column("client_ip", pa.string(), "client address (IPv4 or IPv6)"),
    Column("client_port", pa.int32(), "client port"),
    Column("target_ip", pa.string(), "target address; NULL when no target"),
    Column("target_port", pa.int32(), "target port; NULL when no target"),
    Column("request_processing_time", pa.float64(), "seconds; -1 when not dispatched"),
    Column("target_processing_time", pa.float64(), "seconds; -1 when not dispatched"),
    Column("response_processing_time", pa.float64(), "seconds; -1 when no response"),
    Column("elb_status_code", pa.int32(), "status code returned by the load balancer"),
    Column("target_status_code", pa.int32(), "status code from the target; NULL when none"),
    Column("received_bytes", pa.int64(), "request size in bytes"),
    Column("sent_bytes", pa.int64(), "response size in bytes"),
    Column("request_verb", pa.string(), "HTTP method"),
    Column("request_url", pa.string(), "request URL (may contain spaces)"),
    Column("request_proto", pa.string(), "protocol version"),
    Column("user_agent", pa.string(), "User-Agent header (truncated at 8 KB by ALB)"),
    Column("ssl_cipher", pa.string(), "TLS cipher; NULL when not TLS"),
    Column("ssl_protocol", pa.string(), "TLS protocol; NULL when not TLS"),
    Column("target_group_arn", pa.string(), "target group ARN"),
    Column("trace_id", pa.string(), "X-Amzn-Trace-Id"),
    Column("domain_name", pa.string(), "SNI domain"),
    Column("chosen_cert_arn", pa.string(), "certificate ARN presented"),
    Column("matched_rule_priority", pa.int32(), "0 default rule, -1 error"),
    Column("request_creation_time", _TS, "time the request was received (UTC)"),
    Column("actions_executed", pa.string(), "comma-separated actions"),
    Column("redirect_url", pa.string(), "redirect target"),
    Column("lambda_error_reason", pa.string(), "error_reason field"),
    Column("target_port_list", pa.string(), "space-separated target:port list"),
    Column("target_status_code_list", pa.string(), "space-separated status codes"),
    Column("classification", pa.string(), "desync mitigation classification"),
    Column("classification_reason", pa.string(), "desync classification reason"),
    Column("conn_trace_id", pa.string(), "connection trace id (TID_...)"),
    Column("transformed_host", pa.string(), "host header after transforms"),
    Column("transformed_uri", pa.string(), "URI after transforms"),
    Column("request_transform_status", pa.string(), "transform status"),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)

ARROW_SCHEMA: pa.Schema = pa.schema([pa.field(c.name, c.arrow_type) for c in COLUMNS])

# Hive partition keys, outermost first. ``elb_name`` (not ``elb``): Athena/Glue reject a partition key with the
# same name as a data column, and ``elb`` is the documented data column.
PARTITION_KEYS: tuple[str, ...] = ("elb_name", "day", "hour")

_GLUE_TYPES: dict[pa.DataType, str] = {
    pa.string(): "string",
    pa.int32(): "int",
    pa.int64(): "bigint",
    pa.float64(): "double",
    _TS: "timestamp",
}


def glue_type(arrow_type: pa.DataType) -> str:
    """The Glue/Athena (Hive DDL) type name for an Arrow type used in this schema."""
    return _GLUE_TYPES[arrow_type]


def glue_columns() -> list[dict[str, str]]:
    """Columns in the shape of Glue's ``StorageDescriptor.Columns``."""
    return [{"Name": c.name, "Type": glue_type(c.arrow_type), "Comment": c.comment} for c in COLUMNS]


def glue_partition_keys() -> list[dict[str, str]]:
    return [{"Name": k, "Type": "string"} for k in PARTITION_KEYS]


def glue_table_input(location: str) -> dict[str, object]:
    """The curated table as a Glue ``TableInput`` (zstd Parquet, Hive partitions), data under ``location``.

    Exactly what ``template.yaml`` declares for ``CuratedTable`` (a test compares them); local and test setups
    create the table from this instead of repeating it.
    """
    return {
        "Name": TABLE_NAME,
        "Description": "ALB access logs as zstd Parquet, partitioned by load balancer, day and hour (UTC)",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE", "parquet.compression": "ZSTD"},
        "PartitionKeys": glue_partition_keys(),
        "StorageDescriptor": {
            "Location": location,
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {
                "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                "Parameters": {"serialization.format": "1"},
            },
            "Columns": glue_columns(),
        },
    }


# Regex for the raw (fallback) Athena table over the log bucket, one capture group per column of COLUMNS.
# Forward compatible: fields added after 2020 (29), 2024 (30) and 2025 (33) are optional, and anything AWS
# appends later is matched by the final ``(?: .*)?``. IPv6 addresses are not bracketed, so ``[^ ]*`` before
# ``:port`` is greedy and splits on the last ':'.
RAW_LOG_REGEX = (
    r"([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*):([0-9]*) ([^ ]*)[:-]([0-9]*) ([-.0-9]*) ([-.0-9]*) ([-.0-9]*) "
    r'(-|[-0-9]*) (-|[-0-9]*) ([-0-9]*) ([-0-9]*) "([^ ]*) (.*) (- |[^ ]*)" "([^"]*)" ([^ ]*) ([^ ]*) '
    r'([^ ]*) "([^"]*)" "([^"]*)" "([^"]*)" ([-.0-9]*) ([^ ]*) "([^"]*)" "([^"]*)" "([^"]*)"'
    r'(?: "([^"]*)" "([^"]*)")?(?: "([^"]*)" "([^"]*)")?(?: ([^ ]*))?'
    r'(?: "([^"]*)" "([^"]*)" "([^"]*)")?(?: .*)?'
)
