-- Raw ALB access-log table: Athena RegexSerDe directly over the ALB log bucket (the gzip text files).
--
-- generated from alblake.schema by `make generate` (alblake schema --write); do not edit by hand.
-- Fallback / cross-check for the curated table, with the same columns and values: '-' and the parts of
-- a request line that the parser leaves NULL are NULL here too, domain_name is trimmed, and a line that ends
-- early (2016-2018 logs end after trace_id or later fields) has its missing columns NULL. Types are the
-- curated ones except `time` and `request_creation_time`, which stay ISO 8601 text (Hive cannot parse the
-- 'T' and 'Z'). One difference remains: ALB's \xHH escapes are decoded in the lake, not here. Fields AWS
-- appends in the future are swallowed by the final (?: .*)? ; lines the parser quarantines do not match
-- (RegexSerDe then returns a row of NULLs).
--
-- Placeholders: ${LogBucket}, ${LogPrefix} (empty, or ending in '/'), ${AccountId}, ${Region}.
-- `delivery_day` is the yyyy/MM/dd folder ALB writes into (delivery date, not request date), resolved by
-- partition projection: no partitions need registering. `${delivery_day}` in storage.location.template is
-- filled in by Athena, not by you.
CREATE EXTERNAL TABLE IF NOT EXISTS alb_logs_raw (
  `type` string COMMENT 'http, https, h2, grpcs, ws, wss',
  `time` string COMMENT 'time the response was generated (UTC)',
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
  `request_creation_time` string COMMENT 'time the request was received (UTC)',
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
  `delivery_day` string COMMENT 'yyyy/MM/dd folder of the log object (delivery date)'
)
ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.RegexSerDe'
WITH SERDEPROPERTIES (
  'serialization.format' = '1',
  'input.regex' = '(?:-|([^ ]*)) (?:-|([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.][0-9]{1,6})?Z)) (?:-|([^ ]*)) (?:-|([^ ]*):([0-9]+)) (?:-|([^ ]*):([0-9]+)) (?:-|(-?[0-9]+(?:[.][0-9]+)?)) (?:-|(-?[0-9]+(?:[.][0-9]+)?)) (?:-|(-?[0-9]+(?:[.][0-9]+)?)) (?:-|(-?[0-9]+)) (?:-|(-?[0-9]+)) (?:-|(-?[0-9]+)) (?:-|(-?[0-9]+)) "(?:(?=[^"]* [^"])(?:-|([^ "]+))? )?(?:-|([^"]+?))??(?: (?:-|([^ "]+))"| ?") "(?:-|([^"]*))" (?:-|([^ ]*)) (?:-|([^ ]*)) (?:-|([^ ]*)) "(?:-|([^"]*))"(?: "(?:-"| *((?:[^" ]+(?: +[^" ]+)*)?) *")(?: "(?:-|([^"]*))"(?: (?:-|(-?[0-9]+))(?: (?:-|([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.][0-9]{1,6})?Z))(?: "(?:-|([^"]*))"(?: "(?:-|([^"]*))"(?: "(?:-|([^"]*))"(?: "(?:-|([^"]*))"(?: "(?:-|([^"]*))"(?: "(?:-|([^"]*))"(?: "(?:-|([^"]*))"(?: (?:-|([^ ]*))(?: "(?:-|([^"]*))"(?: "(?:-|([^"]*))"(?: "(?:-|([^"]*))")?)?)?)?)?)?)?)?)?)?)?)?)?)?)?(?: .*)?'
)
LOCATION 's3://${LogBucket}/${LogPrefix}AWSLogs/${AccountId}/elasticloadbalancing/${Region}/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.delivery_day.type' = 'date',
  'projection.delivery_day.format' = 'yyyy/MM/dd',
  'projection.delivery_day.range' = '2016/01/01,NOW',
  'projection.delivery_day.interval' = '1',
  'projection.delivery_day.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://${LogBucket}/${LogPrefix}AWSLogs/${AccountId}/elasticloadbalancing/${Region}/${delivery_day}'
);
