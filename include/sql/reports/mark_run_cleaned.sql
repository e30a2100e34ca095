UPDATE analytics_report_runs SET cleaned_at = now() WHERE id = %(run_id)s
