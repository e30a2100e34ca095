-- Notifications claimed longer ago than the lease: their worker died during the send, so whether
-- they reached the receiver is unknown. Webhooks carry an idempotency key the receiver uses to
-- drop a repeat, so they are sent again; Slack and email have none, so they are abandoned
-- (recorded, never sent twice).
UPDATE analytics_alert_notifications
SET status = CASE WHEN channel_type = 'webhook' THEN 'pending' ELSE 'abandoned' END,
    next_attempt_at = now(),
    last_error = CASE WHEN channel_type = 'webhook'
        THEN 'interrupted during a send; sent again with the same idempotency key'
        ELSE 'interrupted during a send; not sent again to avoid a duplicate (outcome unknown)' END
WHERE status = 'sending' AND claimed_at < now() - make_interval(secs => %(lease_seconds)s)
RETURNING id, channel_type, status
