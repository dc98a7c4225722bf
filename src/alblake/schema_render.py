"""Artefacts generated from ``alblake.schema``: the Athena DDL in ``sql/ddl/``, the Glue tables' SerDe and
column blocks in ``template.yaml``, and the route template query ``sql/rollup/routes.sql`` (from
``alblake.rollup.routes``, the rules the rollup applies).

``alblake schema --write`` (``make generate``) rewrites them; ``stale_files`` (run by
tests/test_schema_generated.py) names the checked-in ones that no longer match the schema. In template.yaml
only the lines between ``# BEGIN generated: <block>`` and ``# END generated: <block>`` are rewritten.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from alblake.errors import InputError
from alblake.rollup.routes import OTHER_ROUTE, route_path_sql, route_template_sql, segment_count_sql
from alblake.rollup.sketch import bucket_value_sql
from alblake.rollup.table import ROUTE_CAP
from alblake.schema import (
    COLUMNS,
    PARTITION_COMMENTS,
    PARTITION_KEYS,
    RAW_LOG_REGEX,
    RAW_TABLE_NAME,
    ROLLUP_COLUMNS,
    ROLLUP_TABLE_NAME,
    TABLE_NAME,
    glue_columns,
    glue_type,
    raw_glue_columns,
    raw_glue_type,
    rollup_glue_columns,
)

CURATED_DDL_PATH = "sql/ddl/alb_logs.sql"
RAW_DDL_PATH = "sql/ddl/alb_logs_raw.sql"
ROLLUP_DDL_PATH = f"sql/ddl/{ROLLUP_TABLE_NAME}.sql"
ROUTES_SQL_PATH = "sql/rollup/routes.sql"
LATENCY_SQL_PATH = "sql/rollup/latency_by_route.sql"
TEMPLATE_PATH = "template.yaml"
GENERATED_PATHS = (CURATED_DDL_PATH, RAW_DDL_PATH, ROLLUP_DDL_PATH, ROUTES_SQL_PATH, LATENCY_SQL_PATH, TEMPLATE_PATH)
_NOTICE = "generated from alblake.schema by `make generate` (alblake schema --write); do not edit by hand"

_CURATED_HEADER = f"""\
-- Curated ALB access-log table: the Parquet lake written by alblake (local CLI or the ingest Lambda).
--
-- {_NOTICE}.
-- Partition keys come from the Hive-style object path
--   s3://<LakeBucket>/alb_logs/elb_name=<lb-name>/day=YYYY-MM-DD/hour=HH/<file>.parquet
-- and are not stored inside the files.
--
-- Placeholders: ${{LakeBucket}} (and a lake prefix if you use one). Partition projection is OFF on purpose:
-- every alblake writer (the ingest and compaction functions, `alblake ingest/compact --glue-database`) points
-- each partition at the one folder readers may read. A partition-hour's folder can hold files that a
-- compaction replaced (kept for a grace period so running queries finish), and compacted rows live under
-- alb_logs/compacted/: do NOT run MSCK REPAIR TABLE or point a crawler or a glob at alb_logs/ (rows would be
-- read twice, or not at all). Read the lake through alblake (`alblake sql`, `alblake.connect`), this Glue
-- table as alblake maintains it, or the visible file list (`alblake files`), never by globbing its folders.
"""

_RAW_HEADER = f"""\
-- Raw ALB access-log table: Athena RegexSerDe directly over the ALB log bucket (the gzip text files).
--
-- {_NOTICE}.
-- Fallback / cross-check for the curated table, with the same columns and values: '-' and the parts of
-- a request line that the parser leaves NULL are NULL here too, domain_name is trimmed, and a line that ends
-- early (2016-2018 logs end after trace_id or later fields) has its missing columns NULL. Types are the
-- curated ones except `time` and `request_creation_time`, which stay ISO 8601 text (Hive cannot parse the
-- 'T' and 'Z'). One difference remains: ALB's \\xHH escapes are decoded in the lake, not here. Fields AWS
-- appends in the future are swallowed by the final (?: .*)? ; lines the parser quarantines do not match
-- (RegexSerDe then returns a row of NULLs).
--
-- Placeholders: ${{LogBucket}}, ${{LogPrefix}} (empty, or ending in '/'), ${{AccountId}}, ${{Region}}.
-- `delivery_day` is the yyyy/MM/dd folder ALB writes into (delivery date, not request date), resolved by
-- partition projection: no partitions need registering. `${{delivery_day}}` in storage.location.template is
-- filled in by Athena, not by you.
"""


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _column_lines(columns: list[tuple[str, str, str]]) -> str:
    return ",\n".join(f"  `{name}` {kind} COMMENT {_sql_string(comment)}" for name, kind, comment in columns)


def curated_ddl() -> str:
    """``sql/ddl/alb_logs.sql``: the curated Parquet table."""
    columns = [(c.name, glue_type(c.arrow_type), c.comment) for c in COLUMNS]
    partitions = [(key, "string", PARTITION_COMMENTS[key]) for key in PARTITION_KEYS]
    return (
        _CURATED_HEADER
        + f"CREATE EXTERNAL TABLE IF NOT EXISTS {TABLE_NAME} (\n{_column_lines(columns)}\n)\n"
        + f"PARTITIONED BY (\n{_column_lines(partitions)}\n)\n"
        + "STORED AS PARQUET\n"
        + f"LOCATION 's3://${{LakeBucket}}/{TABLE_NAME}/'\n"
        + "TBLPROPERTIES (\n  'parquet.compression' = 'ZSTD',\n  'projection.enabled' = 'false'\n);\n"
    )


_ROLLUP_HEADER = f"""\
-- Rollup table: the curated requests summed per minute, load balancer, target group, target, route template,
-- verb, ELB status code and target status class, with a latency sketch (docs/ROLLUP.md).
--
-- {_NOTICE}.
-- alblake writes one rollup file next to every data file of the lake (same partitions), at
--   s3://<LakeBucket>/{ROLLUP_TABLE_NAME}/elb_name=<lb-name>/day=YYYY-MM-DD/hour=HH/<file>.parquet
-- and registers its partitions with the curated table's. Placeholders: ${{LakeBucket}}.
"""


def rollup_ddl() -> str:
    """``sql/ddl/alb_rollup_1m.sql``: the rollup Parquet table."""
    columns = [(c.name, glue_type(c.arrow_type), c.comment) for c in ROLLUP_COLUMNS]
    partitions = [(key, "string", PARTITION_COMMENTS[key]) for key in PARTITION_KEYS]
    return (
        _ROLLUP_HEADER
        + f"CREATE EXTERNAL TABLE IF NOT EXISTS {ROLLUP_TABLE_NAME} (\n{_column_lines(columns)}\n)\n"
        + f"PARTITIONED BY (\n{_column_lines(partitions)}\n)\n"
        + "STORED AS PARQUET\n"
        + f"LOCATION 's3://${{LakeBucket}}/{ROLLUP_TABLE_NAME}/'\n"
        + "TBLPROPERTIES (\n  'parquet.compression' = 'ZSTD',\n  'projection.enabled' = 'false'\n);\n"
    )


def routes_sql() -> str:
    """``sql/rollup/routes.sql``: requests per route template of the curated table, templated in SQL by the
    rules the rollup applies (``alblake.rollup.routes``; the rollup also caps routes, this query does not)."""
    template = route_template_sql("request_url", path="route_path", count="route_segments")
    return (
        "-- title: Requests per route template (curated table)\n"
        "-- description: request_url as a route template ({id} for identifiers, no query string), computed in\n"
        "--   SQL from the rules of alblake.rollup.routes: the rollup's routes, without its cap. The same text\n"
        "--   runs on Athena (Java regular expressions) and DuckDB (RE2; alblake defines regexp_like there).\n"
        f"--   {_NOTICE}.\n"
        "-- chart: table\n"
        "SELECT route, sum(requests) AS requests\n"
        "FROM (\n"
        f"  SELECT {template} AS route, requests\n"
        "  FROM (\n"
        f"    SELECT request_url, route_path, {segment_count_sql('route_path')} AS route_segments, requests\n"
        "    FROM (\n"
        f"      SELECT {route_path_sql('request_url')} AS route_path, request_url, count(*) AS requests\n"
        f"      FROM {TABLE_NAME}\n"
        "      GROUP BY request_url\n"
        "    ) AS urls\n"
        "  ) AS paths\n"
        ") AS routes\n"
        "GROUP BY route\n"
        "ORDER BY requests DESC, route ASC\n"
    )


def latency_by_route_sql() -> str:
    """``sql/rollup/latency_by_route.sql``: p50/p95/p99 per route, merged from the rollup's sketches (the bucket
    values are ``alblake.rollup.sketch``'s, hence generated)."""
    values = {p: bucket_value_sql(f"p{p}_bucket") for p in ("50", "95", "99")}
    return (
        "-- title: Target latency p50 / p95 / p99 per route template (rollup)\n"
        "-- description: Percentiles of target_processing_time per route template, merged from the rollup's\n"
        "--   latency sketches: within 1% of the exact nearest-rank percentile (docs/ROLLUP.md). The same text runs\n"
        "--   on Athena and DuckDB; for a window, filter the rollup rows on minute (and day, for Athena).\n"
        f"--   Per load balancer, the {ROUTE_CAP} most requested routes of the queried rows keep their name, the\n"
        "--   others count as (other) (docs/ROLLUP.md, caps).\n"
        f"--   {_NOTICE}.\n"
        "-- chart: grouped_bar\n"
        "-- x: route\n"
        "-- y: p50, p95, p99\n"
        "WITH ranks AS (\n"
        "  SELECT coalesce(elb, '') AS elb, coalesce(route, '-') AS route,\n"
        "         row_number() OVER (PARTITION BY coalesce(elb, '')\n"
        f"                            ORDER BY CASE WHEN coalesce(route, '-') = '{OTHER_ROUTE}' THEN 1 ELSE 0 END,\n"
        "                                     sum(requests) DESC, coalesce(route, '-') ASC) AS route_rank\n"
        f"  FROM {ROLLUP_TABLE_NAME}\n"
        "  GROUP BY coalesce(elb, ''), coalesce(route, '-')\n"
        "), cells AS (\n"
        f"  SELECT CASE WHEN k.route_rank <= {ROUTE_CAP} THEN k.route ELSE '{OTHER_ROUTE}' END AS route,\n"
        "         u.bucket AS bucket, sum(r.latency_counts[u.i]) AS n\n"
        f"  FROM {ROLLUP_TABLE_NAME} r\n"
        "  JOIN ranks k ON k.elb = coalesce(r.elb, '') AND k.route = coalesce(r.route, '-')\n"
        "  CROSS JOIN UNNEST(r.latency_buckets) WITH ORDINALITY AS u(bucket, i)\n"
        f"  GROUP BY CASE WHEN k.route_rank <= {ROUTE_CAP} THEN k.route ELSE '{OTHER_ROUTE}' END, u.bucket\n"
        "), cumulative AS (\n"
        "  SELECT route, bucket,\n"
        "         sum(n) OVER (PARTITION BY route ORDER BY bucket ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)\n"
        "           AS upto,\n"
        "         sum(n) OVER (PARTITION BY route) AS total\n"
        "  FROM cells\n"
        "), buckets AS (\n"
        "  SELECT route, max(total) AS requests,\n"
        "         min(CASE WHEN 1000 * upto >= 500 * total THEN bucket END) AS p50_bucket,\n"
        "         min(CASE WHEN 1000 * upto >= 950 * total THEN bucket END) AS p95_bucket,\n"
        "         min(CASE WHEN 1000 * upto >= 990 * total THEN bucket END) AS p99_bucket\n"
        "  FROM cumulative GROUP BY route\n"
        ")\n"
        "SELECT route, CAST(requests AS BIGINT) AS requests,\n"
        f"       {values['50']} AS p50,\n"
        f"       {values['95']} AS p95,\n"
        f"       {values['99']} AS p99\n"
        "FROM buckets\n"
        "ORDER BY p95 DESC, route ASC\n"
    )


def raw_ddl() -> str:
    """``sql/ddl/alb_logs_raw.sql``: the RegexSerDe table over the log bucket."""
    columns = [(c.name, raw_glue_type(c.arrow_type), c.comment) for c in COLUMNS]
    partition = [("delivery_day", "string", "yyyy/MM/dd folder of the log object (delivery date)")]
    location = "s3://${LogBucket}/${LogPrefix}AWSLogs/${AccountId}/elasticloadbalancing/${Region}/"
    return (
        _RAW_HEADER
        + f"CREATE EXTERNAL TABLE IF NOT EXISTS {RAW_TABLE_NAME} (\n{_column_lines(columns)}\n)\n"
        + f"PARTITIONED BY (\n{_column_lines(partition)}\n)\n"
        + "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.RegexSerDe'\n"
        + "WITH SERDEPROPERTIES (\n  'serialization.format' = '1',\n"
        + f"  'input.regex' = {_sql_string(RAW_LOG_REGEX)}\n)\n"
        + f"LOCATION '{location}'\n"
        + "TBLPROPERTIES (\n"
        + "  'projection.enabled' = 'true',\n"
        + "  'projection.delivery_day.type' = 'date',\n"
        + "  'projection.delivery_day.format' = 'yyyy/MM/dd',\n"
        + "  'projection.delivery_day.range' = '2016/01/01,NOW',\n"
        + "  'projection.delivery_day.interval' = '1',\n"
        + "  'projection.delivery_day.interval.unit' = 'DAYS',\n"
        + f"  'storage.location.template' = '{location}${{delivery_day}}'\n"
        + ");\n"
    )


def yaml_columns(columns: list[dict[str, str]], indent: int = 0) -> list[str]:
    """Glue columns as YAML flow mappings, one a line (the template's style)."""
    pad = " " * indent
    return [f"{pad}- {{Name: {c['Name']}, Type: {c['Type']}, Comment: {json.dumps(c['Comment'])}}}" for c in columns]


def _yaml_single_quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def curated_serde_block(indent: int = 10) -> list[str]:
    """``CuratedTable``'s SerdeInfo and Columns in template.yaml (``schema.glue_table_input`` has the same)."""
    library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    return _serde_block(library, [], glue_columns(), indent)


def raw_serde_block(indent: int = 10) -> list[str]:
    """``RawTable``'s SerdeInfo (the RegexSerDe and its input.regex) and Columns in template.yaml."""
    regex = f"input.regex: {_yaml_single_quoted(RAW_LOG_REGEX)}"
    return _serde_block("org.apache.hadoop.hive.serde2.RegexSerDe", [regex], raw_glue_columns(), indent)


def rollup_serde_block(indent: int = 10) -> list[str]:
    """``RollupTable``'s SerdeInfo and Columns in template.yaml (``schema.rollup_glue_table_input`` has the same)."""
    library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    return _serde_block(library, [], rollup_glue_columns(), indent)


def _serde_block(library: str, parameters: list[str], columns: list[dict[str, str]], indent: int) -> list[str]:
    pad = " " * indent
    return [
        f"{pad}SerdeInfo:",
        f"{pad}  SerializationLibrary: {library}",
        f"{pad}  Parameters:",
        f'{pad}    serialization.format: "1"',
        *(f"{pad}    {parameter}" for parameter in parameters),
        f"{pad}Columns:",
        *yaml_columns(columns, indent + 2),
    ]


TEMPLATE_BLOCKS: dict[str, Callable[[int], list[str]]] = {
    "CuratedTable SerDe and columns": curated_serde_block,
    "RawTable SerDe and columns": raw_serde_block,
    "RollupTable SerDe and columns": rollup_serde_block,
}


class MissingMarkerError(InputError, ValueError):
    """template.yaml lacks the BEGIN/END comments around a generated block."""


def render_template(text: str) -> str:
    """template.yaml with every generated block rewritten (indented like its BEGIN marker)."""
    lines = text.split("\n")
    for name, render in TEMPLATE_BLOCKS.items():
        begin_marker, end_marker = f"# BEGIN generated: {name}", f"# END generated: {name}"
        begins = [i for i, line in enumerate(lines) if line.strip() == begin_marker]
        ends = [i for i, line in enumerate(lines) if line.strip() == end_marker]
        if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
            raise MissingMarkerError(f"{TEMPLATE_PATH}: expected one '{begin_marker}' ... '{end_marker}' pair")
        indent = len(lines[begins[0]]) - len(lines[begins[0]].lstrip(" "))
        notice = " " * indent + f"# {_NOTICE}"
        lines[begins[0] + 1 : ends[0]] = [notice, *render(indent)]
    return "\n".join(lines)


def generated_files(root: Path) -> dict[Path, str]:
    """The content every generated file under the repository ``root`` must have."""
    template = root / TEMPLATE_PATH
    return {
        root / CURATED_DDL_PATH: curated_ddl(),
        root / RAW_DDL_PATH: raw_ddl(),
        root / ROLLUP_DDL_PATH: rollup_ddl(),
        root / ROUTES_SQL_PATH: routes_sql(),
        root / LATENCY_SQL_PATH: latency_by_route_sql(),
        template: render_template(template.read_text(encoding="utf-8")),
    }


def stale_files(root: Path) -> list[Path]:
    """Generated files under ``root`` whose checked-in content differs from what the schema generates."""
    return [
        path
        for path, content in generated_files(root).items()
        if not path.exists() or path.read_text(encoding="utf-8") != content
    ]


def write_generated(root: Path) -> list[Path]:
    """Rewrites the stale generated files under ``root``; returns them."""
    stale = stale_files(root)
    contents = generated_files(root)
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(contents[path], encoding="utf-8")
    return stale
