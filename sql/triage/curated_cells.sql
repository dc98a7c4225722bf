-- Triage cells from the curated table, in one scan of the window and its baseline: the dimensions the rollup does
-- not hold (or all of them, when the predicate reads columns the rollup lacks). Each dimension is a grouping set
-- of one key column; a key is the dimension's value, or the raw column a value is derived from after grouping
-- (user agent -> family, client address -> network, URL -> route template: each distinct key once, not each row).
-- The target time's bucket is computed with the rollup's sketch scheme, so both sources compare alike.
-- A dimension of many values (client networks: on a day of scattered clients, most of the rows' values) keeps
-- only the values the window has; the baseline's other values are folded into one NULL key, which counts in the
-- dimension's totals and is never a value (rank.sql scores only values with window requests). The window's values
-- come from a read of the window alone (its days), so the day's other values are never grouped per bucket.
-- The rows are first counted per combination of keys (few on most traffic; hits counted apart, not a key), and
-- the grouping sets sum those.
-- Placeholders: as rollup_cells.sql (${keys}, ${sets}, ${dim}, ${key}, ${hit} and the times), ${ordinals} (1..n of
-- in_window, bucket and the key columns), ${bucket} (the bucket of target_processing_time), ${window_values} (a
-- CTE of the window's values per folded dimension, or nothing), ${folded} (the key columns, folded where they are).
${window_values}curated_rows AS (
  SELECT
    "time" >= ${window_start} AS in_window,
    coalesce(${hit}, FALSE) AS hit,
    ${bucket} AS bucket${keys}
  FROM alb_logs
  WHERE "time" >= ${baseline_start} AND "time" < ${window_end} AND day >= '${first_day}' AND day <= '${last_day}'
),
curated_grouped AS (
  SELECT in_window, bucket${folded}, count(*) AS n, sum(CASE WHEN hit THEN 1 ELSE 0 END) AS n_hit
  FROM curated_rows
  GROUP BY ${ordinals}
),
curated_sets AS (
  SELECT ${dim} AS dim, ${key} AS dim_key, in_window, bucket,
         CAST(sum(n) AS BIGINT) AS n, CAST(sum(n_hit) AS BIGINT) AS n_hit
  FROM curated_grouped
  GROUP BY GROUPING SETS (${sets})
)
