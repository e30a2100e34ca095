-- Claim due notifications atomically: rows another worker has locked are skipped, and a claimed
-- row is 'sending' (committed before anything is sent), so no other claim can return it again.
UPDATE analytics_alert_notifications AS n
SET status = 'sending',
    attempts = n.attempts + 1,
    claimed_at = now(),
    claimed_by = %(claimed_by)s
WHERE n.id IN (
    SELECT id
    FROM analytics_alert_notifications
    WHERE status = 'pending' AND next_attempt_at <= now()
      AND NOT (id = ANY (%(seen)s::bigint[]))  -- tried in this round already
    ORDER BY next_attempt_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
RETURNING n.id, n.alert_id, n.event_id, n.kind, n.channel_index, n.channel_type, n.channel, n.payload,
          n.idempotency_key, n.attempts,
          n.created_at
