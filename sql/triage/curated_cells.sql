-- Triage cells from the curated table: the dimensions the rollup does not hold (or all of them, when the
-- predicate reads columns the rollup lacks). Same shape as rollup_cells.sql; the target time's bucket is computed
-- with the rollup's sketch scheme, so both sources compare alike.
-- Placeholders: as rollup_cells.sql, ${bucket} (the bucket of target_processing_time), ${routes} (the route
-- template CTEs, or nothing), ${route_join} (their join, or nothing).
curated_rows AS (
  SELECT
    CASE WHEN "time" >= ${window_start} THEN 'window' ELSE 'baseline' END AS period,
    coalesce(${hit}, FALSE) AS hit,
    ${bucket} AS bucket,
    request_url,
    ${columns}
  FROM alb_logs
  WHERE "time" >= ${baseline_start} AND "time" < ${window_end} AND day >= '${first_day}' AND day <= '${last_day}'
),${routes}
curated_cells AS (
  SELECT d.dim AS dim, CASE d.dim ${values} END AS value, c.period AS period, c.bucket AS bucket,
         CAST(count(*) AS BIGINT) AS n, CAST(sum(CASE WHEN c.hit THEN 1 ELSE 0 END) AS BIGINT) AS n_hit
  FROM curated_rows c${route_join} CROSS JOIN (VALUES ${dims}) AS d(dim)
  GROUP BY 1, 2, 3, 4
)
