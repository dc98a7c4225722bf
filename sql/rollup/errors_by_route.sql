-- title: 5xx per route template (rollup)
-- description: Requests and 5xx of the load balancer per route template and load balancer, from the rollup (the
--   route cap folds rare routes into (other): docs/ROLLUP.md). The same text runs on Athena and DuckDB.
-- chart: table
SELECT
  coalesce(route, '-') AS route,
  elb,
  sum(requests) AS requests,
  sum(errors_5xx) AS errors_5xx,
  CAST(sum(errors_5xx) AS DOUBLE) / nullif(sum(requests), 0) AS error_rate,
  sum(unanswered) AS unanswered
FROM alb_rollup_1m
GROUP BY coalesce(route, '-'), elb
ORDER BY errors_5xx DESC, requests DESC, route ASC, elb ASC
