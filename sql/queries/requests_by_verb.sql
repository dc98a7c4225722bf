-- title: Requests by HTTP verb
-- description: Requests per request method; '-' when the client sent no parseable request line.
-- chart: bar
-- x: verb
-- y: requests
SELECT
  coalesce(request_verb, '-') AS verb,
  count(*) AS requests
FROM alb_logs
GROUP BY coalesce(request_verb, '-')
ORDER BY requests DESC, verb ASC
