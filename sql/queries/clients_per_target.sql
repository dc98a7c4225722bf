-- title: Distinct client IPs per target IP
-- description: How many different client addresses reached each target address (requests
--   without a target, e.g. fixed responses, redirects and Lambda targets, are left out).
-- chart: bar
-- x: target_ip
-- y: distinct_clients
SELECT
  target_ip,
  count(DISTINCT client_ip) AS distinct_clients,
  count(*) AS requests
FROM alb_logs
WHERE target_ip IS NOT NULL
GROUP BY target_ip
ORDER BY distinct_clients DESC, target_ip ASC
