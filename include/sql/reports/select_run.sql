SELECT id, report_id, report_name, trigger, slot, run_key, dag_run_id, sql, parameters, format,
       recipients, destinations, retention_days, statement_timeout_seconds, max_attachment_bytes,
       email_subject, chart, file_timeout_seconds, run_timeout_seconds, status, attempts, claimed_by, claim_expires_at, rows, bytes, duration_ms,
       file_name, location, error, triggered_by, data_note, audience, deadline_at, deadline_missed_at, created_at, started_at, generated_at, finished_at, cleaned_at
FROM analytics_report_runs
WHERE id = %(run_id)s
