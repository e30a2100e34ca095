SELECT id FROM analytics_report_runs WHERE run_key = %(run_key)s
