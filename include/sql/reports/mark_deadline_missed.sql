UPDATE analytics_report_runs
SET deadline_missed_at = now()
WHERE id = %(run_id)s AND deadline_missed_at IS NULL
RETURNING id, deadline_missed_at
