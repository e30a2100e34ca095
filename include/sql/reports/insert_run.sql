-- Idempotent: a second planning of the same report and slot (or ad-hoc trigger) inserts nothing.
INSERT INTO analytics_report_runs (
    report_id, report_name, trigger, slot, run_key, dag_run_id, sql, parameters, format, recipients,
    destinations, retention_days, statement_timeout_seconds, max_attachment_bytes, email_subject,
    chart, file_timeout_seconds, run_timeout_seconds, status, error, finished_at, triggered_by, data_note, audience,
    deadline_at
) VALUES (
    %(report_id)s, %(report_name)s, %(trigger)s, %(slot)s, %(run_key)s, %(dag_run_id)s, %(sql)s,
    %(parameters)s, %(format)s, %(recipients)s, %(destinations)s, %(retention_days)s,
    %(statement_timeout_seconds)s, %(max_attachment_bytes)s, %(email_subject)s,
    %(chart)s, %(file_timeout_seconds)s, %(run_timeout_seconds)s, %(status)s, %(error)s, CASE WHEN %(status)s = 'failed' THEN now() END,
    %(triggered_by)s, %(data_note)s, %(audience)s, %(deadline_at)s
)
ON CONFLICT DO NOTHING
RETURNING id
