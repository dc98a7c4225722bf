-- title: Error reasons and desync classification
-- description: Requests that carry an error_reason (lambda_error_reason column) or a desync-mitigation
--   classification, grouped by reason, classification and classification reason ('-' = not set), with the
--   ELB status codes seen for each group.
-- chart: table
SELECT
  coalesce(lambda_error_reason, '-') AS error_reason,
  coalesce(classification, '-') AS desync_classification,
  coalesce(classification_reason, '-') AS desync_reason,
  count(*) AS requests,
  min(elb_status_code) AS min_elb_status_code,
  max(elb_status_code) AS max_elb_status_code
FROM alb_logs
WHERE lambda_error_reason IS NOT NULL OR classification IS NOT NULL OR classification_reason IS NOT NULL
GROUP BY coalesce(lambda_error_reason, '-'), coalesce(classification, '-'), coalesce(classification_reason, '-')
ORDER BY requests DESC, error_reason ASC, desync_classification ASC, desync_reason ASC
