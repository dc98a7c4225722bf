"""The one declaration of the ALB log format and of the curated table it becomes.

``LOG_FIELDS`` lists the fields of a log line in order, each with the curated columns it fills. Everything else
derives from it: the Arrow schema used to write Parquet, the parser's field table (``alblake.parse``), the raw
RegexSerDe regex, and the generated artefacts (``sql/ddl/*.sql`` and the Glue tables in ``template.yaml``,
written by ``alblake schema --write`` / ``make generate`` and checked by tests/test_schema_generated.py).

Adding a field AWS appends to the log: one ``_value(...)`` line at the end of ``LOG_FIELDS``, then
``make generate``. Column names follow the AWS-documented Athena table for ALB logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

TABLE_NAME = "alb_logs"
RAW_TABLE_NAME = "alb_logs_raw"

STRING = pa.string()
TIMESTAMP = pa.timestamp("us", tz="UTC")

# How a typed value looks in the log (ALB writes plain decimals and ISO 8601 UTC; '-' means absent). Anything
# else is quarantined by the parser. No backslashes: the raw regex embeds these in Hive string literals.
VALUE_TEXT: dict[pa.DataType, str] = {
    pa.int32(): "-?[0-9]+",
    pa.int64(): "-?[0-9]+",
    pa.float64(): "-?[0-9]+(?:[.][0-9]+)?",
    TIMESTAMP: "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.][0-9]{1,6})?Z",
}


@dataclass(frozen=True)
class Column:
    name: str
    arrow_type: pa.DataType
    comment: str
    escaped: bool = False  # ALB's \xHH escapes are decoded (when the result is valid UTF-8)
    trimmed: bool = False  # spaces stripped at both ends (before escapes are decoded)


Layout = Literal["value", "address", "request"]


@dataclass(frozen=True)
class LogField:
    """One space-separated field of a log line and the columns it fills.

    ``value``: one column; ``address``: 'ip:port' (IPv6 unbracketed, split at the last ':') into two columns;
    ``request``: '"VERB URL PROTO"' (the URL may hold spaces) into three columns.
    """

    name: str  # as docs/ALB_LOG_FORMAT.md names it (quarantine reasons name it)
    quoted: bool
    columns: tuple[Column, ...]
    layout: Layout = "value"


def _value(
    name: str,
    arrow_type: pa.DataType,
    comment: str,
    *,
    quoted: bool = False,
    column: str | None = None,
    escaped: bool = False,
    trimmed: bool = False,
) -> LogField:
    return LogField(name, quoted, (Column(column or name, arrow_type, comment, escaped, trimmed),))


def _address(name: str, prefix: str, ip_comment: str, port_comment: str) -> LogField:
    ip, port = Column(f"{prefix}_ip", STRING, ip_comment), Column(f"{prefix}_port", pa.int32(), port_comment)
    return LogField(name, False, (ip, port), "address")


_REQUEST = LogField(
    "request",
    True,
    (
        Column("request_verb", STRING, "HTTP method", escaped=True),
        Column("request_url", STRING, "request URL (may contain spaces)", escaped=True),
        Column("request_proto", STRING, "protocol version"),
    ),
    "request",
)

# The log's fields in order. ALB appends new fields at the end; lines may end after any field from trace_id on.
LOG_FIELDS: tuple[LogField, ...] = (
    _value("type", STRING, "http, https, h2, grpcs, ws, wss"),
    _value("time", TIMESTAMP, "time the response was generated (UTC)"),
    _value("elb", STRING, "load balancer resource id: app/name/id"),
    _address("client:port", "client", "client address (IPv4 or IPv6)", "client port"),
    _address("target:port", "target", "target address; NULL when no target", "target port; NULL when no target"),
    _value("request_processing_time", pa.float64(), "seconds; -1 when not dispatched"),
    _value("target_processing_time", pa.float64(), "seconds; -1 when not dispatched"),
    _value("response_processing_time", pa.float64(), "seconds; -1 when no response"),
    _value("elb_status_code", pa.int32(), "status code returned by the load balancer"),
    _value("target_status_code", pa.int32(), "status code from the target; NULL when none"),
    _value("received_bytes", pa.int64(), "request size in bytes"),
    _value("sent_bytes", pa.int64(), "response size in bytes"),
    _REQUEST,
    _value("user_agent", STRING, "User-Agent header (truncated at 8 KB by ALB)", quoted=True, escaped=True),
    _value("ssl_cipher", STRING, "TLS cipher; NULL when not TLS"),
    _value("ssl_protocol", STRING, "TLS protocol; NULL when not TLS"),
    _value("target_group_arn", STRING, "target group ARN"),
    _value("trace_id", STRING, "X-Amzn-Trace-Id", quoted=True),  # 2016-2017 logs end here (18 fields)
    _value("domain_name", STRING, "SNI domain", quoted=True, escaped=True, trimmed=True),
    _value("chosen_cert_arn", STRING, "certificate ARN presented", quoted=True),  # 2017-2018 logs end here
    _value("matched_rule_priority", pa.int32(), "0 default rule, -1 error"),
    _value("request_creation_time", TIMESTAMP, "time the request was received (UTC)"),
    _value("actions_executed", STRING, "comma-separated actions", quoted=True),
    _value("redirect_url", STRING, "redirect target", quoted=True, escaped=True),
    _value("error_reason", STRING, "error_reason field", quoted=True, column="lambda_error_reason", escaped=True),
    _value("target:port_list", STRING, "space-separated target:port list", quoted=True, column="target_port_list"),
    _value("target_status_code_list", STRING, "space-separated status codes", quoted=True),
    _value("classification", STRING, "desync mitigation classification", quoted=True),
    _value("classification_reason", STRING, "desync classification reason", quoted=True),
    _value("conn_trace_id", STRING, "connection trace id (TID_...)"),  # May 2024
    _value("transformed_host", STRING, "host header after transforms", quoted=True, escaped=True),  # Oct 2025
    _value("transformed_uri", STRING, "URI after transforms", quoted=True, escaped=True),
    _value("request_transform_status", STRING, "transform status", quoted=True),
)

MIN_FIELDS = 18  # the oldest ALB lines (2016-2017) end after trace_id; any longer prefix is valid too
KNOWN_FIELDS = len(LOG_FIELDS)  # later trailing fields are ignored

COLUMNS: tuple[Column, ...] = tuple(c for f in LOG_FIELDS for c in f.columns)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)

ARROW_SCHEMA: pa.Schema = pa.schema([pa.field(c.name, c.arrow_type) for c in COLUMNS])

# Hive partition keys, outermost first. ``elb_name`` (not ``elb``): Athena/Glue reject a partition key with the
# same name as a data column, and ``elb`` is the documented data column.
PARTITION_KEYS: tuple[str, ...] = ("elb_name", "day", "hour")
PARTITION_COMMENTS: dict[str, str] = {
    "elb_name": "load balancer name (from app/<name>/<id>)",
    "day": "UTC day of the request, YYYY-MM-DD",
    "hour": "UTC hour of the request, HH",
}

_GLUE_TYPES: dict[pa.DataType, str] = {
    STRING: "string",
    pa.int32(): "int",
    pa.int64(): "bigint",
    pa.float64(): "double",
    TIMESTAMP: "timestamp",
    pa.list_(pa.int32()): "array<int>",
    pa.list_(pa.int64()): "array<bigint>",
}


def glue_type(arrow_type: pa.DataType) -> str:
    """The Glue/Athena (Hive DDL) type name for an Arrow type used in this schema."""
    return _GLUE_TYPES[arrow_type]


def raw_glue_type(arrow_type: pa.DataType) -> str:
    """The column type in the raw RegexSerDe table: as curated, except timestamps, which stay ISO 8601 text
    (Hive's timestamp parser rejects the 'T' and the 'Z')."""
    return "string" if arrow_type == TIMESTAMP else glue_type(arrow_type)


def glue_columns() -> list[dict[str, str]]:
    """Columns in the shape of Glue's ``StorageDescriptor.Columns``."""
    return [{"Name": c.name, "Type": glue_type(c.arrow_type), "Comment": c.comment} for c in COLUMNS]


def raw_glue_columns() -> list[dict[str, str]]:
    """The raw table's columns (same names and comments as the curated ones, ``raw_glue_type`` types)."""
    return [{"Name": c.name, "Type": raw_glue_type(c.arrow_type), "Comment": c.comment} for c in COLUMNS]


def glue_partition_keys() -> list[dict[str, str]]:
    return [{"Name": k, "Type": "string"} for k in PARTITION_KEYS]


def glue_table_input(location: str) -> dict[str, object]:
    """The curated table as a Glue ``TableInput`` (zstd Parquet, Hive partitions), data under ``location``.

    Exactly what ``template.yaml`` declares for ``CuratedTable`` (a test compares them); local and test setups
    create the table from this instead of repeating it.
    """
    description = "ALB access logs as zstd Parquet, partitioned by load balancer, day and hour (UTC)"
    return _parquet_table_input(TABLE_NAME, description, location, glue_columns())


def _parquet_table_input(
    name: str, description: str, location: str, columns: list[dict[str, str]]
) -> dict[str, object]:
    return {
        "Name": name,
        "Description": description,
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
            "Columns": columns,
        },
    }


# ------------------------------------------------------------------------------------------ rollup table
#
# ``alb_rollup_1m``: the curated rows summed per minute and a few dimensions (``alblake.rollup.table`` computes
# it from each data file; docs/ROLLUP.md). Same partitions as the curated table. Dimensions first, then sums.

ROLLUP_TABLE_NAME = "alb_rollup_1m"

ROLLUP_DIMENSIONS: tuple[Column, ...] = (
    Column("minute", TIMESTAMP, "start of the UTC minute of the requests (their time)"),
    Column("elb", STRING, "load balancer resource id: app/name/id"),
    Column("target_group_arn", STRING, "target group ARN; NULL when none"),
    Column("target_ip", STRING, "target address; NULL when no target"),
    Column("target_port", pa.int32(), "target port; NULL when no target"),
    Column("route", STRING, "route template of request_url ({id} for identifiers); (other) beyond the cap"),
    Column("request_verb", STRING, "HTTP method; (other) for a non-standard one"),
    Column("elb_status_code", pa.int32(), "status code returned by the load balancer"),
    Column("target_status_class", STRING, "1xx..5xx of target_status_code; NULL when none"),
)
ROLLUP_MEASURES: tuple[Column, ...] = (
    Column("requests", pa.int64(), "requests"),
    Column("received_bytes", pa.int64(), "sum of received_bytes"),
    Column("sent_bytes", pa.int64(), "sum of sent_bytes"),
    Column("errors_4xx", pa.int64(), "requests with an ELB status code 400-499"),
    Column("errors_5xx", pa.int64(), "requests with an ELB status code 500-599"),
    Column("unanswered", pa.int64(), "requests with target_processing_time -1 (not dispatched or no answer)"),
    Column("with_error_reason", pa.int64(), "requests with an error_reason"),
    Column("desync_ambiguous", pa.int64(), "requests classified Ambiguous by desync mitigation"),
    Column("desync_severe", pa.int64(), "requests classified Severe by desync mitigation"),
    Column("latency_requests", pa.int64(), "requests with target_processing_time >= 0 (those in the sketch)"),
    Column("latency_sum", pa.float64(), "sum of their target_processing_time, seconds"),
    Column("latency_max", pa.float64(), "largest target_processing_time, seconds"),
    Column("latency_buckets", pa.list_(pa.int32()), "latency sketch: log-scale buckets, ascending"),
    Column("latency_counts", pa.list_(pa.int64()), "latency sketch: requests per bucket"),
)
ROLLUP_COLUMNS: tuple[Column, ...] = ROLLUP_DIMENSIONS + ROLLUP_MEASURES
ROLLUP_ARROW_SCHEMA: pa.Schema = pa.schema([pa.field(c.name, c.arrow_type) for c in ROLLUP_COLUMNS])


def rollup_glue_columns() -> list[dict[str, str]]:
    """The rollup table's columns in the shape of Glue's ``StorageDescriptor.Columns``."""
    return [{"Name": c.name, "Type": glue_type(c.arrow_type), "Comment": c.comment} for c in ROLLUP_COLUMNS]


def rollup_glue_table_input(location: str) -> dict[str, object]:
    """The rollup table as a Glue ``TableInput`` (what ``template.yaml`` declares for ``RollupTable``)."""
    description = "ALB requests per minute, load balancer, target, route, verb and status (alblake rollup)"
    return _parquet_table_input(ROLLUP_TABLE_NAME, description, location, rollup_glue_columns())


# ------------------------------------------------------------------------------------------ raw regex
#
# One capture group per column, giving what the curated lake holds: a NULL column is a group that does not
# take part in the match (RegexSerDe then yields NULL; an empty match would yield ''), so '-' is matched
# outside the group. Only constructs with the same meaning in Java and Python regexes (tests run Python's
# ``re``; Athena runs java.util.regex); no backslash or quote (the regex sits in Hive and YAML string
# literals). RegexSerDe uses ``matches()``: the regex covers the whole line. Fields after MIN_FIELDS are
# optional as nested groups (a line ends after any of them), and ``(?: .*)?`` takes fields AWS adds later.


def _raw_value(column: Column, quoted: bool) -> str:
    text = VALUE_TEXT.get(column.arrow_type, '[^"]*' if quoted else "[^ ]*")
    if column.trimmed:  # ' x ' -> 'x' (and ' - ' -> '-': only a bare '-' means NULL, as in the parser)
        return '"(?:-"| *((?:[^" ]+(?: +[^" ]+)*)?) *")'
    return f'"(?:-|({text}))"' if quoted else f"(?:-|({text}))"


# '"VERB URL PROTO"' split as parse._split_request_exactly does: the verb runs to the first space when there
# is a space before the last character; the protocol follows the last space unless the text ends with a space;
# the URL is the rest (one trailing space dropped). Empty or '-' verb and URL, and a '-' protocol, are NULL.
_RAW_REQUEST = (
    '"(?:(?=[^"]* [^"])(?:-|([^ "]+))? )?'  # verb
    '(?:-|([^"]+?))??'  # url: the shortest that lets the rest match, i.e. up to the last space
    '(?: (?:-|([^ "]+))"| ?")'  # protocol, or none
)


def _raw_field(field: LogField) -> str:
    if field.layout == "address":
        return "(?:-|([^ ]*):([0-9]+))"
    if field.layout == "request":
        return _RAW_REQUEST
    return _raw_value(field.columns[0], field.quoted)


def raw_log_regex(fields: tuple[LogField, ...] = LOG_FIELDS) -> str:
    """The RegexSerDe regex for lines of ``fields`` (the first MIN_FIELDS required, the rest optional)."""
    required = " ".join(_raw_field(f) for f in fields[:MIN_FIELDS])
    optional = "".join(f"(?: {_raw_field(f)}" for f in fields[MIN_FIELDS:])
    return required + optional + ")?" * (len(fields) - MIN_FIELDS) + "(?: .*)?"


RAW_LOG_REGEX = raw_log_regex()
