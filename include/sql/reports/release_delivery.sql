-- A refused attempt (circuit breaker open) gives the claim and the attempt back.
UPDATE analytics_report_deliveries
SET status = 'pending', attempts = greatest(attempts - 1, 0), claimed_by = NULL, claim_expires_at = NULL
WHERE id = %(delivery_id)s AND status = 'sending'
