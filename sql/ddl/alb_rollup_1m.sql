-- Rollup table: the curated requests summed per minute, load balancer, target group, target, route template,
-- verb, ELB status code and target status class, with a latency sketch (docs/ROLLUP.md).
--
-- generated from alblake.schema by `make generate` (alblake schema --write); do not edit by hand.
-- alblake writes one rollup file next to every data file of the lake (same partitions), at
--   s3://<LakeBucket>/alb_rollup_1m/elb_name=<lb-name>/day=YYYY-MM-DD/hour=HH/<file>.parquet
-- and registers its partitions with the curated table's. Placeholders: ${LakeBucket}.
CREATE EXTERNAL TABLE IF NOT EXISTS alb_rollup_1m (
  `minute` timestamp COMMENT 'start of the UTC minute of the requests (their time)',
  `elb` string COMMENT 'load balancer resource id: app/name/id',
  `target_group_arn` string COMMENT 'target group ARN; NULL when none',
  `target_ip` string COMMENT 'target address; NULL when no target',
  `target_port` int COMMENT 'target port; NULL when no target',
  `route` string COMMENT 'route template of request_url ({id} for identifiers); (other) beyond the cap',
  `request_verb` string COMMENT 'HTTP method; (other) for a non-standard one',
  `elb_status_code` int COMMENT 'status code returned by the load balancer',
  `target_status_class` string COMMENT '1xx..5xx of target_status_code; NULL when none',
  `requests` bigint COMMENT 'requests',
  `received_bytes` bigint COMMENT 'sum of received_bytes',
  `sent_bytes` bigint COMMENT 'sum of sent_bytes',
  `errors_4xx` bigint COMMENT 'requests with an ELB status code 400-499',
  `errors_5xx` bigint COMMENT 'requests with an ELB status code 500-599',
  `unanswered` bigint COMMENT 'requests with target_processing_time -1 (not dispatched or no answer)',
  `with_error_reason` bigint COMMENT 'requests with an error_reason',
  `desync_ambiguous` bigint COMMENT 'requests classified Ambiguous by desync mitigation',
  `desync_severe` bigint COMMENT 'requests classified Severe by desync mitigation',
  `latency_requests` bigint COMMENT 'requests with target_processing_time >= 0 (those in the sketch)',
  `latency_sum` double COMMENT 'sum of their target_processing_time, seconds',
  `latency_max` double COMMENT 'largest target_processing_time, seconds',
  `latency_buckets` array<int> COMMENT 'latency sketch: log-scale buckets, ascending',
  `latency_counts` array<bigint> COMMENT 'latency sketch: requests per bucket'
)
PARTITIONED BY (
  `elb_name` string COMMENT 'load balancer name (from app/<name>/<id>)',
  `day` string COMMENT 'UTC day of the request, YYYY-MM-DD',
  `hour` string COMMENT 'UTC hour of the request, HH'
)
STORED AS PARQUET
LOCATION 's3://${LakeBucket}/alb_rollup_1m/'
TBLPROPERTIES (
  'parquet.compression' = 'ZSTD',
  'projection.enabled' = 'false'
);
