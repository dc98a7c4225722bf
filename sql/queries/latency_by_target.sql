-- title: Target latency p50 / p95 / p99 per target
-- description: Percentiles of target_processing_time (seconds) per target ip:port ([ip]:port for IPv6), over
--   requests the load balancer dispatched to a target and got a response for (the logged -1 is excluded).
--   approx_percentile is Trino's approximate (t-digest) percentile on Athena; on DuckDB alblake.analysis
--   defines it as a macro over quantile_cont (exact, linear interpolation), so local numbers can differ
--   slightly from Athena's.
-- chart: grouped_bar
-- x: target
-- y: p50, p95, p99
SELECT
  CASE WHEN target_ip LIKE '%:%' THEN '[' || target_ip || ']' ELSE target_ip END
    || ':' || CAST(target_port AS VARCHAR) AS target,
  count(*) AS requests,
  approx_percentile(target_processing_time, 0.5) AS p50,
  approx_percentile(target_processing_time, 0.95) AS p95,
  approx_percentile(target_processing_time, 0.99) AS p99,
  max(target_processing_time) AS max_seconds
FROM alb_logs
WHERE target_ip IS NOT NULL AND target_processing_time >= 0
GROUP BY
  CASE WHEN target_ip LIKE '%:%' THEN '[' || target_ip || ']' ELSE target_ip END
    || ':' || CAST(target_port AS VARCHAR)
ORDER BY p95 DESC, target ASC
