-- Atomic claim of one delivery: a sent delivery is never claimed again, so it is never sent twice.
UPDATE analytics_report_deliveries
SET status = 'sending', attempts = attempts + 1, claimed_by = %(worker)s,
    claim_expires_at = now() + make_interval(secs => %(lease_seconds)s)
WHERE id = %(delivery_id)s
  AND attempts < %(max_attempts)s
  AND (status IN ('pending', 'failed')
       OR (status = 'sending' AND claim_expires_at < now()))
RETURNING id, attempts
