-- Curated ALB access-log table: the Parquet lake written by alblake (local CLI or the ingest Lambda).
--
-- generated from alblake.schema by `make generate` (alblake schema --write); do not edit by hand.
-- Partition keys come from the Hive-style object path
--   s3://<LakeBucket>/alb_logs/elb_name=<lb-name>/day=YYYY-MM-DD/hour=HH/<file>.parquet
-- and are not stored inside the files.
--
-- Placeholders: ${LakeBucket} (and a lake prefix if you use one). Partition projection is OFF on purpose:
-- every alblake writer (the ingest and compaction functions, `alblake ingest/compact --glue-database`) points
-- each partition at the one folder readers may read. A partition-hour's folder can hold files that a
-- compaction replaced (kept for a grace period so running queries finish), and compacted rows live under
-- alb_logs/compacted/: do NOT run MSCK REPAIR TABLE or point a crawler or a glob at alb_logs/ (rows would be
-- read twice, or not at all). Read the lake through alblake (`alblake sql`, `alblake.connect`), this Glue
-- table as alblake maintains it, or the visible file list (`alblake files`), never by globbing its folders.
CREATE EXTERNAL TABLE IF NOT EXISTS alb_logs (
  `type` string COMMENT 'http, https, h2, grpcs, ws, wss',
  `time` timestamp COMMENT 'time the response was generated (UTC)',
  `elb` string COMMENT 'load balancer resource id: app/name/id',
  `client_ip` string COMMENT 'client address (IPv4 or IPv6)',
  `client_port` int COMMENT 'client port',
  `target_ip` string COMMENT 'target address; NULL when no target',
  `target_port` int COMMENT 'target port; NULL when no target',
  `request_processing_time` double COMMENT 'seconds; -1 when not dispatched',
  `target_processing_time` double COMMENT 'seconds; -1 when not dispatched',
  `response_processing_time` double COMMENT 'seconds; -1 when no response',
  `elb_status_code` int COMMENT 'status code returned by the load balancer',
  `target_status_code` int COMMENT 'status code from the target; NULL when none',
  `received_bytes` bigint COMMENT 'request size in bytes',
  `sent_bytes` bigint COMMENT 'response size in bytes',
  `request_verb` string COMMENT 'HTTP method',
  `request_url` string COMMENT 'request URL (may contain spaces)',
  `request_proto` string COMMENT 'protocol version',
  `user_agent` string COMMENT 'User-Agent header (truncated at 8 KB by ALB)',
  `ssl_cipher` string COMMENT 'TLS cipher; NULL when not TLS',
  `ssl_protocol` string COMMENT 'TLS protocol; NULL when not TLS',
  `target_group_arn` string COMMENT 'target group ARN',
  `trace_id` string COMMENT 'X-Amzn-Trace-Id',
  `domain_name` string COMMENT 'SNI domain',
  `chosen_cert_arn` string COMMENT 'certificate ARN presented',
  `matched_rule_priority` int COMMENT '0 default rule, -1 error',
  `request_creation_time` timestamp COMMENT 'time the request was received (UTC)',
  `actions_executed` string COMMENT 'comma-separated actions',
  `redirect_url` string COMMENT 'redirect target',
  `lambda_error_reason` string COMMENT 'error_reason field',
  `target_port_list` string COMMENT 'space-separated target:port list',
  `target_status_code_list` string COMMENT 'space-separated status codes',
  `classification` string COMMENT 'desync mitigation classification',
  `classification_reason` string COMMENT 'desync classification reason',
  `conn_trace_id` string COMMENT 'connection trace id (TID_...)',
  `transformed_host` string COMMENT 'host header after transforms',
  `transformed_uri` string COMMENT 'URI after transforms',
  `request_transform_status` string COMMENT 'transform status'
)
PARTITIONED BY (
  `elb_name` string COMMENT 'load balancer name (from app/<name>/<id>)',
  `day` string COMMENT 'UTC day of the request, YYYY-MM-DD',
  `hour` string COMMENT 'UTC hour of the request, HH'
)
STORED AS PARQUET
LOCATION 's3://${LakeBucket}/alb_logs/'
TBLPROPERTIES (
  'parquet.compression' = 'ZSTD',
  'projection.enabled' = 'false'
);
