-- Enabled reports generated on change (schedule 'on_change') that read one of the relations that
-- changed (schema.table).
SELECT r.id, r.name, r.sql, r.parameters, r.format, r.schedule, r.timezone, r.recipients, r.destinations,
       r.retention_days, r.owner, r.enabled, r.statement_timeout_seconds, r.max_attachment_bytes,
       r.email_subject, r.chart, r.file_timeout_seconds, r.run_timeout_seconds, r.created_at, r.updated_at,
       r.wait_for_data, r.data_wait_limit_seconds, r.reads, r.reads_changed_at, r.audiences, r.deadline
FROM analytics_reports AS r
WHERE r.enabled AND r.schedule = 'on_change' AND r.reads && %(changed)s::text[]
ORDER BY r.id
