UPDATE analytics_report_runs
SET status = 'delivered', finished_at = now(), error = NULL
WHERE id = %(run_id)s AND status = 'generated'
