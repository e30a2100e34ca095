-- Tell a report's owner, through the alerts' outbox, that a run missed its deadline: once per run
-- and owner channel (a repeat is dropped).
INSERT INTO analytics_alert_notifications (
    report_run_id, kind, channel_index, channel_type, channel, payload
) VALUES (
    %(report_run_id)s, 'report_deadline', %(channel_index)s, %(channel_type)s, %(channel)s, %(payload)s
)
ON CONFLICT (report_run_id, channel_index) WHERE report_run_id IS NOT NULL DO NOTHING
RETURNING id
