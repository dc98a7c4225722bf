-- title: Requests by ELB status code
-- description: Number of requests per status code returned by the load balancer.
-- chart: bar
-- x: elb_status_code
-- y: requests
SELECT
  elb_status_code,
  count(*) AS requests
FROM alb_logs
GROUP BY elb_status_code
ORDER BY elb_status_code ASC NULLS LAST
