-- Enabled reports with a cron schedule (not 'on_change'), and the latest slot already planned for each.
SELECT r.id, r.name, r.sql, r.parameters, r.format, r.schedule, r.timezone, r.recipients, r.destinations,
       r.retention_days, r.owner, r.enabled, r.statement_timeout_seconds, r.max_attachment_bytes,
       r.email_subject, r.chart, r.file_timeout_seconds, r.run_timeout_seconds, r.created_at, r.updated_at,
       r.wait_for_data, r.data_wait_limit_seconds, r.reads, r.reads_changed_at, r.audiences, r.deadline,
       (SELECT max(runs.slot)
          FROM analytics_report_runs AS runs
         WHERE runs.report_id = r.id AND runs.trigger = 'scheduled') AS last_slot
FROM analytics_reports AS r
WHERE r.enabled AND r.schedule IS NOT NULL AND r.schedule <> 'on_change'
ORDER BY r.id
