-- Triage cells from the rollup (alblake.triage assembles the query; the same text runs on Athena and DuckDB).
-- Per dimension key, period (in_window) and latency bucket: n requests, n_hit of them selected, from one read of
-- the rollup's rows: each dimension is a grouping set of one key column ('all': none). Requests without a target
-- time have bucket NULL (a row whose requests all have one adds none); the sketch of each rollup row gives the
-- others (its buckets unnested, each count found by the bucket's position: buckets are unique within a row).
-- Placeholders: ${keys} (', <key expression> AS k_<dimension>' each), ${key_columns} (', r.k_<dimension>'), ${sets}
-- (the grouping sets), ${key_names} and ${ordinals} (the key columns, and 1..n of the rows' counts per
-- combination of keys), ${dim} and ${key} (which set a row is of, and its key), ${hit} (the predicate over rollup
-- columns), ${window_start}, ${window_end}, ${baseline_start}, ${first_day}, ${last_day}.
rollup_rows AS (
  SELECT
    minute >= ${window_start} AS in_window,
    coalesce(${hit}, FALSE) AS hit,
    requests, latency_requests, latency_buckets, latency_counts${keys}
  FROM alb_rollup_1m
  WHERE minute >= ${baseline_start} AND minute < ${window_end} AND day >= '${first_day}' AND day <= '${last_day}'
),
rollup_counts AS (
  SELECT r.in_window AS in_window, r.hit AS hit, CAST(NULL AS INTEGER) AS bucket,
         r.requests - r.latency_requests AS n${key_columns}
  FROM rollup_rows r WHERE r.requests > r.latency_requests
  UNION ALL
  SELECT r.in_window AS in_window, r.hit AS hit, CAST(u.bucket AS INTEGER) AS bucket,
         r.latency_counts[array_position(r.latency_buckets, u.bucket)] AS n${key_columns}
  FROM rollup_rows r CROSS JOIN UNNEST(r.latency_buckets) AS u(bucket)
),
rollup_grouped AS (
  SELECT in_window, hit, bucket${key_names}, sum(n) AS n
  FROM rollup_counts
  GROUP BY ${ordinals}
),
rollup_sets AS (
  SELECT ${dim} AS dim, ${key} AS dim_key, in_window, bucket,
         CAST(sum(n) AS BIGINT) AS n, CAST(sum(CASE WHEN hit THEN n ELSE 0 END) AS BIGINT) AS n_hit
  FROM rollup_grouped
  GROUP BY GROUPING SETS (${sets})
)
