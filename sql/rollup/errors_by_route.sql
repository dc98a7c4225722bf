-- title: 5xx per route template (rollup)
-- description: Requests and 5xx of the load balancer per route template and load balancer, from the rollup: per
--   load balancer, the 200 most requested routes of the queried rows keep their name, the others are summed as
--   (other) (docs/ROLLUP.md, caps). The same text runs on Athena and DuckDB.
-- chart: table
WITH routes AS (
  SELECT coalesce(route, '-') AS route, elb, sum(requests) AS requests, sum(errors_5xx) AS errors_5xx,
         sum(unanswered) AS unanswered
  FROM alb_rollup_1m
  GROUP BY coalesce(route, '-'), elb
), ranked AS (
  SELECT route, elb, requests, errors_5xx, unanswered,
         row_number() OVER (PARTITION BY elb
                            ORDER BY CASE WHEN route = '(other)' THEN 1 ELSE 0 END, requests DESC, route ASC)
           AS route_rank
  FROM routes
), folded AS (
  SELECT CASE WHEN route_rank <= 200 THEN route ELSE '(other)' END AS route, elb, sum(requests) AS requests,
         sum(errors_5xx) AS errors_5xx, sum(unanswered) AS unanswered
  FROM ranked
  GROUP BY CASE WHEN route_rank <= 200 THEN route ELSE '(other)' END, elb
)
SELECT
  route,
  elb,
  requests,
  errors_5xx,
  CAST(errors_5xx AS DOUBLE) / nullif(requests, 0) AS error_rate,
  unanswered
FROM folded
ORDER BY errors_5xx DESC, requests DESC, route ASC, elb ASC
