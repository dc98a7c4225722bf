-- title: Most failing URLs
-- description: The 20 URLs (query string removed) with the most requests answered with a 4xx or 5xx ELB
--   status code, with their 5xx count and error share.
-- chart: table
SELECT
  split_part(request_url, '?', 1) AS url,
  count(*) AS requests,
  sum(CASE WHEN elb_status_code >= 400 THEN 1 ELSE 0 END) AS errors,
  sum(CASE WHEN elb_status_code >= 500 THEN 1 ELSE 0 END) AS errors_5xx,
  CAST(sum(CASE WHEN elb_status_code >= 400 THEN 1 ELSE 0 END) AS DOUBLE) / count(*) AS error_rate
FROM alb_logs
WHERE request_url IS NOT NULL
GROUP BY split_part(request_url, '?', 1)
HAVING sum(CASE WHEN elb_status_code >= 400 THEN 1 ELSE 0 END) > 0
ORDER BY errors DESC, url ASC
LIMIT 20
