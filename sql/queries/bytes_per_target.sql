-- title: Bytes sent and received per target
-- description: Request bytes received from clients and response bytes sent to clients, summed
--   per target IP (requests without a target are left out).
-- chart: grouped_bar
-- x: target_ip
-- y: received_bytes, sent_bytes
SELECT
  target_ip,
  sum(received_bytes) AS received_bytes,
  sum(sent_bytes) AS sent_bytes,
  count(*) AS requests
FROM alb_logs
WHERE target_ip IS NOT NULL
GROUP BY target_ip
ORDER BY sum(sent_bytes) + sum(received_bytes) DESC, target_ip ASC
