-- Tell an alert's owner, once per notification and owner channel, that a notification failed for
-- good or has an unknown outcome (a repeat of the same notice is dropped).
INSERT INTO analytics_alert_notifications (
    alert_id, event_id, kind, channel_index, channel_type, channel, payload, about_notification_id
) VALUES (
    %(alert_id)s, %(event_id)s, 'delivery_problem', %(channel_index)s, %(channel_type)s, %(channel)s,
    %(payload)s, %(about_notification_id)s
)
ON CONFLICT (about_notification_id, channel_index) WHERE about_notification_id IS NOT NULL DO NOTHING
