INSERT INTO analytics_alert_notifications (
    alert_id, event_id, kind, channel_index, channel_type, channel, payload, idempotency_key, status
) VALUES (
    %(alert_id)s, %(event_id)s, %(kind)s, %(channel_index)s, %(channel_type)s, %(channel)s,
    %(payload)s, %(idempotency_key)s, %(status)s
)
