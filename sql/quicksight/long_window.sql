-- title: Long-window QuickSight dataset (SPICE) over the rollup
-- description: The rollup summed per hour, load balancer, target group, route template and ELB status code,
--   for the last ${RollupWindowDays} days: what template.yaml's QuickSightRollupDataSet imports into SPICE (the
--   template holds this text; a test keeps them equal). Mean latency is latency_seconds / latency_requests;
--   percentiles over any window come from the rollup's sketches in Athena (sql/rollup/latency_by_route.sql).
--   Placeholders ${GlueDatabase} and ${RollupWindowDays} are the stack's.
-- chart: table
SELECT
    date_trunc('hour', "minute") AS "hour_start",
    "elb_name",
    coalesce(nullif(split_part("target_group_arn", '/', 2), ''), '-') AS "target_group",
    coalesce("route", '-') AS "route",
    "elb_status_code",
    sum("requests") AS "requests",
    sum("received_bytes") AS "received_bytes",
    sum("sent_bytes") AS "sent_bytes",
    sum("errors_4xx") AS "errors_4xx",
    sum("errors_5xx") AS "errors_5xx",
    sum("unanswered") AS "unanswered",
    sum("latency_requests") AS "latency_requests",
    sum("latency_sum") AS "latency_seconds",
    max("latency_max") AS "latency_max"
FROM "AwsDataCatalog"."${GlueDatabase}"."alb_rollup_1m"
WHERE "day" >= date_format(current_date - interval '${RollupWindowDays}' day, '%Y-%m-%d')
GROUP BY 1, 2, 3, 4, 5
