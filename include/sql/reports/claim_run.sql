-- Atomic claim: only one task instance generates a run. The same task instance (a retry) may take
-- over its own claim; anyone may take an expired one.
UPDATE analytics_report_runs
SET status = 'running', attempts = attempts + 1, claimed_by = %(worker)s,
    claim_expires_at = now() + make_interval(secs => %(lease_seconds)s),
    started_at = now(), error = NULL
WHERE id = %(run_id)s
  AND attempts < %(max_attempts)s
  AND (status = 'pending'
       OR (status = 'running' AND (claim_expires_at < now() OR claimed_by = %(worker)s)))
RETURNING id
