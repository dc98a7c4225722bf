-- Triage cells from the rollup (alblake.triage assembles the query; the same text runs on Athena and DuckDB).
-- Per dimension value, period ('window' | 'baseline') and latency bucket: n requests, n_hit of them selected.
-- Requests without a target time have bucket NULL; the sketch of each rollup row gives the others.
-- Placeholders: ${dims} (VALUES rows of dimension names), ${values} (CASE branches: name -> value expression),
-- ${hit} (the predicate over rollup columns), ${window_start}, ${window_end}, ${baseline_start}, ${first_day},
-- ${last_day}.
rollup_rows AS (
  SELECT
    CASE WHEN minute >= ${window_start} THEN 'window' ELSE 'baseline' END AS period,
    coalesce(${hit}, FALSE) AS hit,
    requests, latency_requests, latency_buckets, latency_counts,
    ${columns}
  FROM alb_rollup_1m
  WHERE minute >= ${baseline_start} AND minute < ${window_end} AND day >= '${first_day}' AND day <= '${last_day}'
),
rollup_counts AS (
  SELECT d.dim AS dim, CASE d.dim ${values} END AS value, r.period AS period, CAST(NULL AS INTEGER) AS bucket,
         CAST(sum(r.requests - r.latency_requests) AS BIGINT) AS n,
         CAST(sum(CASE WHEN r.hit THEN r.requests - r.latency_requests ELSE 0 END) AS BIGINT) AS n_hit
  FROM rollup_rows r CROSS JOIN (VALUES ${dims}) AS d(dim)
  GROUP BY 1, 2, 3
),
rollup_latency AS (
  SELECT d.dim AS dim, CASE d.dim ${values} END AS value, r.period AS period, CAST(u.bucket AS INTEGER) AS bucket,
         CAST(sum(r.latency_counts[u.i]) AS BIGINT) AS n,
         CAST(sum(CASE WHEN r.hit THEN r.latency_counts[u.i] ELSE 0 END) AS BIGINT) AS n_hit
  FROM rollup_rows r
    CROSS JOIN UNNEST(r.latency_buckets) WITH ORDINALITY AS u(bucket, i)
    CROSS JOIN (VALUES ${dims}) AS d(dim)
  GROUP BY 1, 2, 3, 4
)
