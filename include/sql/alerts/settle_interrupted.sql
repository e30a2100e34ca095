-- Notifications left 'sending' by a delivery worker that is gone (killed, or past its deadline
-- without recording; analytics_delivery_worker_status): whether they reached the receiver is
-- unknown. Channels in %(resend)s are sent again (a webhook's receiver drops the repeat by its
-- idempotency key); the others become 'unknown' with the reason and are never sent twice.
WITH gone AS (
    SELECT n.id,
           coalesce(w.gone_reason, 'it is not a registered delivery worker') AS why
    FROM analytics_alert_notifications n
    LEFT JOIN analytics_delivery_worker_status w ON w.worker_id = n.claimed_by
    WHERE n.status = 'sending' AND NOT coalesce(w.alive, false)
    FOR UPDATE OF n SKIP LOCKED
)
UPDATE analytics_alert_notifications AS n
SET status = CASE WHEN n.channel_type = ANY (%(resend)s) THEN 'pending' ELSE 'unknown' END,
    next_attempt_at = now(),
    last_error = 'outcome unknown: worker ' || coalesce(n.claimed_by, '?') || ' claimed it at '
        || to_char(n.claimed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC to send it and is gone ('
        || gone.why || ') without recording whether it was delivered; '
        || CASE WHEN n.channel_type = ANY (%(resend)s)
                THEN 'sent again with the same idempotency key (the receiver drops a repeat)'
                ELSE 'not sent again, to avoid a duplicate' END
FROM gone
WHERE n.id = gone.id AND n.status = 'sending'
RETURNING n.id, n.alert_id, n.event_id, n.kind, n.channel_index, n.channel_type, n.channel, n.payload,
          n.status, n.last_error
