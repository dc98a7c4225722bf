-- title: Slowest URLs
-- description: The 20 URLs (query string removed) with the highest mean total time, where total time is
--   request + target + response processing time; requests with a logged -1 (not dispatched or no
--   response) are excluded.
-- chart: table
SELECT
  split_part(request_url, '?', 1) AS url,
  count(*) AS requests,
  avg(request_processing_time + target_processing_time + response_processing_time) AS avg_seconds,
  max(request_processing_time + target_processing_time + response_processing_time) AS max_seconds
FROM alb_logs
WHERE request_url IS NOT NULL
  AND request_processing_time >= 0
  AND target_processing_time >= 0
  AND response_processing_time >= 0
GROUP BY split_part(request_url, '?', 1)
ORDER BY avg_seconds DESC, url ASC
LIMIT 20
