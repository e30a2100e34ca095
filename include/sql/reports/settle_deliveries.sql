-- Deliveries of run %(run_id)s left 'sending' by a delivery worker that is gone (killed, or past
-- its deadline without recording; analytics_delivery_worker_status): whether they arrived is
-- unknown. Channels in %(resend)s are sent again (an object-storage copy replaces the same file
-- with the same bytes); the others (email, Slack) become 'unknown' with the reason, never sent twice.
WITH gone AS (
    SELECT d.id,
           coalesce(w.gone_reason, 'it is not a registered delivery worker') AS why
    FROM analytics_report_deliveries d
    LEFT JOIN analytics_delivery_worker_status w ON w.worker_id = d.claimed_by
    WHERE d.run_id = %(run_id)s AND d.status = 'sending' AND NOT coalesce(w.alive, false)
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE analytics_report_deliveries AS d
SET status = CASE WHEN d.channel = ANY (%(resend)s) THEN 'pending' ELSE 'unknown' END,
    attempts = CASE WHEN d.channel = ANY (%(resend)s) THEN greatest(d.attempts - 1, 0) ELSE d.attempts END,
    error = 'outcome unknown: worker ' || coalesce(d.claimed_by, '?') || ' claimed it at '
        || coalesce(to_char(d.claimed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC', '?')
        || ' to send it and is gone (' || gone.why || ') without recording whether it was delivered; '
        || CASE WHEN d.channel = ANY (%(resend)s)
                THEN 'copied again (the copy replaces the same file)'
                ELSE 'not sent again, to avoid a duplicate' END
FROM gone
WHERE d.id = gone.id AND d.status = 'sending'
RETURNING d.id, d.channel, d.target, d.status, d.error
