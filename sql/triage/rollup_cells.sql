-- Triage cells from the rollup (alblake.triage assembles the query; the same text runs on Athena and DuckDB).
-- Per dimension key, period (in_window) and latency bucket: n requests, n_hit of them selected, from the rollup's
-- rows: each dimension is a grouping set of one key column ('all': none). Requests without a target time have
-- bucket NULL (a row whose requests all have one adds none); the sketch of each rollup row gives the others (its
-- buckets unnested, each count found by the bucket's position: buckets are unique within a row). The counts are
-- first summed per combination of the rollup columns the keys are made of (hits apart, not a key: fewer
-- combinations), and the keys computed once per combination (fewer than the rows' buckets); each branch reads the table itself (a shared subquery of the rows
-- costs DuckDB more than the second read: Trino reads it twice either way).
-- Placeholders: ${columns} (', <rollup column>' each, those the keys are made of), ${column_ordinals} (1..n of
-- in_window, bucket and those), ${keys} (', <key expression> AS k_<dimension>' each), ${sets} (the grouping
-- sets), ${dim} and ${key} (which set a row is of, and its key), ${hit} (the predicate over rollup columns),
-- ${window_start}, ${window_end}, ${baseline_start}, ${first_day}, ${last_day}.
rollup_counts AS (
  SELECT minute >= ${window_start} AS in_window, coalesce(${hit}, FALSE) AS hit, CAST(NULL AS INTEGER) AS bucket,
         requests - latency_requests AS n${columns}
  FROM alb_rollup_1m
  WHERE minute >= ${baseline_start} AND minute < ${window_end} AND day >= '${first_day}' AND day <= '${last_day}'
    AND requests > latency_requests
  UNION ALL
  SELECT minute >= ${window_start} AS in_window, coalesce(${hit}, FALSE) AS hit, CAST(u.bucket AS INTEGER) AS bucket,
         latency_counts[array_position(latency_buckets, u.bucket)] AS n${columns}
  FROM alb_rollup_1m CROSS JOIN UNNEST(latency_buckets) AS u(bucket)
  WHERE minute >= ${baseline_start} AND minute < ${window_end} AND day >= '${first_day}' AND day <= '${last_day}'
),
rollup_grouped AS (
  SELECT in_window, bucket${columns}, sum(n) AS n, sum(CASE WHEN hit THEN n ELSE 0 END) AS n_hit
  FROM rollup_counts
  GROUP BY ${column_ordinals}
),
rollup_keyed AS (
  SELECT in_window, bucket, n, n_hit${keys}
  FROM rollup_grouped
),
rollup_sets AS (
  SELECT ${dim} AS dim, ${key} AS dim_key, in_window, bucket,
         CAST(sum(n) AS BIGINT) AS n, CAST(sum(n_hit) AS BIGINT) AS n_hit
  FROM rollup_keyed
  GROUP BY GROUPING SETS (${sets})
)
