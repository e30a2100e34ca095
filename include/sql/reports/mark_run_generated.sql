UPDATE analytics_report_runs
SET status = 'generated', rows = %(rows)s, bytes = %(bytes)s, duration_ms = %(duration_ms)s,
    file_name = %(file_name)s, location = %(location)s, generated_at = now(),
    claimed_by = NULL, claim_expires_at = NULL, error = NULL
WHERE id = %(run_id)s AND status = 'running' AND claimed_by = %(worker)s
RETURNING id
