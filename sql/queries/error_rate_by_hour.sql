-- title: 4xx / 5xx rate per hour
-- description: Share of requests per UTC hour answered by the load balancer with a 4xx or a 5xx status.
-- chart: line
-- x: hour_utc
-- y: rate_4xx, rate_5xx
SELECT
  date_trunc('hour', "time") AS hour_utc,
  count(*) AS requests,
  sum(CASE WHEN elb_status_code BETWEEN 400 AND 499 THEN 1 ELSE 0 END) AS errors_4xx,
  sum(CASE WHEN elb_status_code BETWEEN 500 AND 599 THEN 1 ELSE 0 END) AS errors_5xx,
  CAST(sum(CASE WHEN elb_status_code BETWEEN 400 AND 499 THEN 1 ELSE 0 END) AS DOUBLE) / count(*) AS rate_4xx,
  CAST(sum(CASE WHEN elb_status_code BETWEEN 500 AND 599 THEN 1 ELSE 0 END) AS DOUBLE) / count(*) AS rate_5xx
FROM alb_logs
GROUP BY date_trunc('hour', "time")
ORDER BY hour_utc ASC
