-- Triage ranking over the cells (rollup_cells.sql, curated_cells.sql). "Hits" are the selected requests: those the
-- --where predicate matches, or the 5xx of the load balancer without one. Per dimension value, from the window's
-- and the baseline's requests, hits and latency sketches, two excesses in requests:
--   hit_excess:  window hits beyond what the value's own baseline hit rate predicts for its window requests
--   slow_excess: window requests slower than the value's baseline p95 beyond the baseline's share of those
-- and two scores: each excess minus the value's share (by window requests) of its dimension's summed excess. A
-- value that carries the excess only in proportion to its traffic (a domain that has all of it) scores 0; a value
-- on which the excess concentrates (the one failing target) scores about its whole excess.
-- Only values with window requests (and 'all') are scored: a value without any has no hits and no latency in the
-- window, so it adds nothing to its dimension's sums and can be no finding; the others' scores are the same
-- without it, and its histogram (most of a day's values, on a long baseline) is never built.
-- Placeholders: ${scope} (n or n_hit: which window requests the latency is about), ${per_dimension},
-- ${w_p50}, ${w_p95}, ${b_p50}, ${b_p95} (bucket -> seconds).
seen AS (
  SELECT dim, value FROM cells WHERE in_window OR dim = 'all' GROUP BY dim, value
),
seen_cells AS (
  SELECT c.dim AS dim, c.value AS value, c.in_window AS in_window, c.bucket AS bucket, c.n AS n, c.n_hit AS n_hit
  FROM cells c JOIN seen s ON c.dim = s.dim AND c.value = s.value
),
totals AS (
  SELECT dim, value,
         sum(CASE WHEN in_window THEN n ELSE 0 END) AS w_requests,
         sum(CASE WHEN in_window THEN n_hit ELSE 0 END) AS w_hits,
         sum(CASE WHEN NOT in_window THEN n ELSE 0 END) AS b_requests,
         sum(CASE WHEN NOT in_window THEN n_hit ELSE 0 END) AS b_hits
  FROM seen_cells GROUP BY dim, value
),
dim_totals AS (
  SELECT dim, sum(CASE WHEN in_window THEN n ELSE 0 END) AS all_w_requests,
         sum(CASE WHEN in_window THEN n_hit ELSE 0 END) AS all_w_hits,
         sum(CASE WHEN NOT in_window THEN n ELSE 0 END) AS all_b_requests,
         sum(CASE WHEN NOT in_window THEN n_hit ELSE 0 END) AS all_b_hits
  FROM cells GROUP BY dim
),
hist AS (
  SELECT c.dim AS dim, c.value AS value, c.bucket AS bucket,
         sum(CASE WHEN c.in_window THEN c.${scope} ELSE 0 END) AS w_n,
         sum(CASE WHEN NOT c.in_window THEN c.n ELSE 0 END) AS b_n
  FROM seen_cells c
  WHERE c.bucket IS NOT NULL GROUP BY c.dim, c.value, c.bucket
),
cumulative AS (
  SELECT dim, value, bucket, w_n, b_n,
         sum(w_n) OVER (PARTITION BY dim, value ORDER BY bucket ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
           AS w_upto,
         sum(b_n) OVER (PARTITION BY dim, value ORDER BY bucket ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
           AS b_upto,
         sum(w_n) OVER (PARTITION BY dim, value) AS w_total,
         sum(b_n) OVER (PARTITION BY dim, value) AS b_total
  FROM hist
),
percentiles AS (
  SELECT dim, value, max(w_total) AS w_latency, max(b_total) AS b_latency,
         min(CASE WHEN w_total > 0 AND 1000 * w_upto >= 500 * w_total THEN bucket END) AS w_p50_bucket,
         min(CASE WHEN w_total > 0 AND 1000 * w_upto >= 950 * w_total THEN bucket END) AS w_p95_bucket,
         min(CASE WHEN b_total > 0 AND 1000 * b_upto >= 500 * b_total THEN bucket END) AS b_p50_bucket,
         min(CASE WHEN b_total > 0 AND 1000 * b_upto >= 950 * b_total THEN bucket END) AS b_p95_bucket
  FROM cumulative GROUP BY dim, value
),
slow AS (
  SELECT h.dim AS dim, h.value AS value,
         sum(CASE WHEN h.bucket > p.b_p95_bucket THEN h.w_n ELSE 0 END) AS w_slow,
         sum(CASE WHEN h.bucket > p.b_p95_bucket THEN h.b_n ELSE 0 END) AS b_slow
  FROM hist h JOIN percentiles p ON h.dim = p.dim AND h.value = p.value
  GROUP BY h.dim, h.value
),
scored AS (
  SELECT t.dim AS dim, t.value AS value,
         CAST(t.w_requests AS BIGINT) AS w_requests, CAST(t.w_hits AS BIGINT) AS w_hits,
         CAST(t.b_requests AS BIGINT) AS b_requests, CAST(t.b_hits AS BIGINT) AS b_hits,
         CAST(d.all_w_requests AS BIGINT) AS all_w_requests, CAST(d.all_w_hits AS BIGINT) AS all_w_hits,
         CAST(d.all_b_requests AS BIGINT) AS all_b_requests, CAST(d.all_b_hits AS BIGINT) AS all_b_hits,
         CAST(coalesce(p.w_latency, 0) AS BIGINT) AS w_latency, CAST(coalesce(p.b_latency, 0) AS BIGINT) AS b_latency,
         ${w_p50} AS w_p50, ${w_p95} AS w_p95, ${b_p50} AS b_p50, ${b_p95} AS b_p95,
         CAST(coalesce(s.w_slow, 0) AS BIGINT) AS w_slow, CAST(coalesce(s.b_slow, 0) AS BIGINT) AS b_slow,
         t.w_hits - t.w_requests * coalesce(CASE WHEN t.b_requests > 0 THEN CAST(t.b_hits AS DOUBLE) / t.b_requests
           END, CAST(d.all_b_hits AS DOUBLE) / nullif(d.all_b_requests, 0), 0) AS hit_excess,
         CASE WHEN p.b_latency > 0 AND p.w_latency > 0
              THEN s.w_slow - p.w_latency * CAST(s.b_slow AS DOUBLE) / p.b_latency END AS slow_excess
  FROM totals t
    JOIN dim_totals d ON t.dim = d.dim
    LEFT JOIN percentiles p ON t.dim = p.dim AND t.value = p.value
    LEFT JOIN slow s ON t.dim = s.dim AND t.value = s.value
),
shared AS (
  SELECT scored.*,
         hit_excess - coalesce(sum(hit_excess) OVER (PARTITION BY dim) * CAST(w_requests AS DOUBLE)
           / nullif(all_w_requests, 0), 0) AS hit_score,
         slow_excess - coalesce(sum(slow_excess) OVER (PARTITION BY dim) * CAST(w_latency AS DOUBLE)
           / nullif(sum(w_latency) OVER (PARTITION BY dim), 0), 0) AS slow_score
  FROM scored
),
ranked AS (
  SELECT shared.*,
         row_number() OVER (PARTITION BY dim ORDER BY hit_score DESC, value ASC) AS hit_rank,
         row_number() OVER (PARTITION BY dim ORDER BY slow_score DESC NULLS LAST, value ASC) AS slow_rank
  FROM shared
)
SELECT dim, value, w_requests, w_hits, b_requests, b_hits, all_w_requests, all_w_hits, all_b_requests, all_b_hits,
       w_latency, b_latency, w_p50, w_p95, b_p50, b_p95, w_slow, b_slow, hit_excess, slow_excess, hit_score,
       slow_score
FROM ranked
WHERE dim = 'all' OR hit_rank <= ${per_dimension} OR slow_rank <= ${per_dimension}
ORDER BY dim ASC, value ASC
