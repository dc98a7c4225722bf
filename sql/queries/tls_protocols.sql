-- title: TLS protocol mix
-- description: Requests per TLS protocol version and share of all requests; '-' is plain HTTP (no TLS).
-- chart: bar
-- x: tls_protocol
-- y: requests
SELECT
  coalesce(ssl_protocol, '-') AS tls_protocol,
  count(*) AS requests,
  CAST(count(*) AS DOUBLE) / sum(count(*)) OVER () AS share
FROM alb_logs
GROUP BY coalesce(ssl_protocol, '-')
ORDER BY requests DESC, tls_protocol ASC
