-- A refused attempt (circuit breaker open) gives the claim and the attempt back.
UPDATE analytics_report_runs
SET status = 'pending', attempts = greatest(attempts - 1, 0), claimed_by = NULL, claim_expires_at = NULL
WHERE id = %(run_id)s AND status = 'running' AND claimed_by = %(worker)s
