-- Triage cells from the curated table, in one scan of the window and its baseline: the dimensions the rollup does
-- not hold (or all of them, when the predicate reads columns the rollup lacks). Each dimension is a grouping set
-- of one key column; a key is the dimension's value, or the raw column a value is derived from after grouping
-- (user agent -> family, client address -> network, URL -> route template: each distinct key once, not each row).
-- The target time's bucket is computed with the rollup's sketch scheme, so both sources compare alike.
-- Placeholders: as rollup_cells.sql, ${bucket} (the bucket of target_processing_time).
curated_rows AS (
  SELECT
    "time" >= ${window_start} AS in_window,
    coalesce(${hit}, FALSE) AS hit,
    ${bucket} AS bucket${keys}
  FROM alb_logs
  WHERE "time" >= ${baseline_start} AND "time" < ${window_end} AND day >= '${first_day}' AND day <= '${last_day}'
),
curated_sets AS (
  SELECT ${dim} AS dim, ${key} AS dim_key, in_window, bucket,
         CAST(count(*) AS BIGINT) AS n, CAST(sum(CASE WHEN hit THEN 1 ELSE 0 END) AS BIGINT) AS n_hit
  FROM curated_rows
  GROUP BY GROUPING SETS (${sets})
)
