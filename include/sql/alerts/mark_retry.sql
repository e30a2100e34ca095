-- A failed attempt, recorded by the worker that made it: back to pending with the next attempt
-- time, or 'failed' for good (a permanent failure, or the attempts used up).
UPDATE analytics_alert_notifications
SET status = CASE WHEN %(give_up)s THEN 'failed' ELSE 'pending' END,
    next_attempt_at = now() + make_interval(secs => %(delay_seconds)s),
    last_error = %(error)s
WHERE id = %(id)s AND claimed_by = %(claimed_by)s AND status IN ('sending', 'unknown')
