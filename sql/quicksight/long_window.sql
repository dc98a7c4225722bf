-- title: Long-window QuickSight dataset (SPICE) over the rollup
-- description: The rollup summed per hour, load balancer, target group, route template and ELB status code,
--   for the last ${RollupWindowDays} days: what template.yaml's QuickSightRollupDataSet imports into SPICE (the
--   template holds this text; a test keeps them equal). Per load balancer, the 200 routes with the most requests
--   over the whole window keep their name and the others are summed as (other), so a data set holds at most 201
--   routes per load balancer whatever the window (docs/ROLLUP.md, caps). Mean latency is latency_seconds /
--   latency_requests; percentiles over any window come from the rollup's sketches in Athena
--   (sql/rollup/latency_by_route.sql). Placeholders ${GlueDatabase} and ${RollupWindowDays} are the stack's.
-- chart: table
WITH "hourly" AS (
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
), "ranked" AS (
  SELECT "elb_name", "route",
         row_number() OVER (PARTITION BY "elb_name" ORDER BY CASE WHEN "route" = '(other)' THEN 1 ELSE 0 END,
                            sum("requests") DESC, "route" ASC) AS "route_rank"
  FROM "hourly"
  GROUP BY "elb_name", "route"
)
SELECT
    h."hour_start",
    h."elb_name",
    h."target_group",
    CASE WHEN r."route_rank" <= 200 THEN h."route" ELSE '(other)' END AS "route",
    h."elb_status_code",
    sum(h."requests") AS "requests",
    sum(h."received_bytes") AS "received_bytes",
    sum(h."sent_bytes") AS "sent_bytes",
    sum(h."errors_4xx") AS "errors_4xx",
    sum(h."errors_5xx") AS "errors_5xx",
    sum(h."unanswered") AS "unanswered",
    sum(h."latency_requests") AS "latency_requests",
    sum(h."latency_seconds") AS "latency_seconds",
    max(h."latency_max") AS "latency_max"
FROM "hourly" h JOIN "ranked" r ON r."elb_name" = h."elb_name" AND r."route" = h."route"
GROUP BY 1, 2, 3, 4, 5
