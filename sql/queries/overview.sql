-- title: Overview
-- description: Headline numbers for the whole table: requests, 4xx/5xx share (by ELB status code), distinct
--   client IPs, bytes in and out, and the time range covered.
-- chart: kpi
SELECT
  count(*) AS requests,
  sum(CASE WHEN elb_status_code BETWEEN 400 AND 499 THEN 1 ELSE 0 END) AS errors_4xx,
  sum(CASE WHEN elb_status_code BETWEEN 500 AND 599 THEN 1 ELSE 0 END) AS errors_5xx,
  CAST(sum(CASE WHEN elb_status_code >= 400 THEN 1 ELSE 0 END) AS DOUBLE) / nullif(count(*), 0) AS error_rate,
  count(DISTINCT client_ip) AS distinct_clients,
  sum(received_bytes) AS received_bytes,
  sum(sent_bytes) AS sent_bytes,
  min("time") AS first_request,
  max("time") AS last_request
FROM alb_logs
