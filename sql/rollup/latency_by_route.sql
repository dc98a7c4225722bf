-- title: Target latency p50 / p95 / p99 per route template (rollup)
-- description: Percentiles of target_processing_time per route template, merged from the rollup's
--   latency sketches: within 1% of the exact nearest-rank percentile (docs/ROLLUP.md). The same text runs
--   on Athena and DuckDB; for a window, filter the rollup rows on minute (and day, for Athena).
--   Per load balancer, the 200 most requested routes of the queried rows keep their name, the
--   others count as (other) (docs/ROLLUP.md, caps).
--   generated from alblake.schema by `make generate` (alblake schema --write); do not edit by hand.
-- chart: grouped_bar
-- x: route
-- y: p50, p95, p99
WITH ranks AS (
  SELECT coalesce(elb, '') AS elb, coalesce(route, '-') AS route,
         row_number() OVER (PARTITION BY coalesce(elb, '')
                            ORDER BY CASE WHEN coalesce(route, '-') = '(other)' THEN 1 ELSE 0 END,
                                     sum(requests) DESC, coalesce(route, '-') ASC) AS route_rank
  FROM alb_rollup_1m
  GROUP BY coalesce(elb, ''), coalesce(route, '-')
), cells AS (
  SELECT CASE WHEN k.route_rank <= 200 THEN k.route ELSE '(other)' END AS route,
         u.bucket AS bucket, sum(r.latency_counts[u.i]) AS n
  FROM alb_rollup_1m r
  JOIN ranks k ON k.elb = coalesce(r.elb, '') AND k.route = coalesce(r.route, '-')
  CROSS JOIN UNNEST(r.latency_buckets) WITH ORDINALITY AS u(bucket, i)
  GROUP BY CASE WHEN k.route_rank <= 200 THEN k.route ELSE '(other)' END, u.bucket
), cumulative AS (
  SELECT route, bucket,
         sum(n) OVER (PARTITION BY route ORDER BY bucket ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
           AS upto,
         sum(n) OVER (PARTITION BY route) AS total
  FROM cells
), buckets AS (
  SELECT route, max(total) AS requests,
         min(CASE WHEN 1000 * upto >= 500 * total THEN bucket END) AS p50_bucket,
         min(CASE WHEN 1000 * upto >= 950 * total THEN bucket END) AS p95_bucket,
         min(CASE WHEN 1000 * upto >= 990 * total THEN bucket END) AS p99_bucket
  FROM cumulative GROUP BY route
)
SELECT route, CAST(requests AS BIGINT) AS requests,
       CASE WHEN p50_bucket = 0 THEN 0E0 ELSE 2 * 1E-6 * power(1.02020202020202E0, p50_bucket - 1) / (1.02020202020202E0 + 1) END AS p50,
       CASE WHEN p95_bucket = 0 THEN 0E0 ELSE 2 * 1E-6 * power(1.02020202020202E0, p95_bucket - 1) / (1.02020202020202E0 + 1) END AS p95,
       CASE WHEN p99_bucket = 0 THEN 0E0 ELSE 2 * 1E-6 * power(1.02020202020202E0, p99_bucket - 1) / (1.02020202020202E0 + 1) END AS p99
FROM buckets
ORDER BY p95 DESC, route ASC
