SELECT id, name, sql, parameters, format, schedule, timezone, recipients, destinations, retention_days,
       owner, enabled, statement_timeout_seconds, max_attachment_bytes, email_subject, chart,
       file_timeout_seconds, run_timeout_seconds, created_at, updated_at, wait_for_data,
       data_wait_limit_seconds, reads, reads_changed_at, audiences, deadline
FROM analytics_reports
WHERE name = %(report_name)s
