-- status 'failed' gives the run up; 'pending' leaves it to be tried again.
UPDATE analytics_report_runs
SET status = %(status)s, error = %(error)s, claimed_by = NULL, claim_expires_at = NULL,
    finished_at = CASE WHEN %(status)s = 'failed' THEN now() END
WHERE id = %(run_id)s AND status IN ('running', 'generated')
