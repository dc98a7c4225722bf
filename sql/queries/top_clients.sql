-- title: Top clients
-- description: The 20 client IPs sending the most requests, with their traffic and error counts.
-- chart: bar
-- x: client_ip
-- y: requests
SELECT
  client_ip,
  count(*) AS requests,
  sum(CASE WHEN elb_status_code >= 400 THEN 1 ELSE 0 END) AS errors,
  sum(received_bytes) AS received_bytes,
  sum(sent_bytes) AS sent_bytes
FROM alb_logs
GROUP BY client_ip
ORDER BY requests DESC, client_ip ASC
LIMIT 20
