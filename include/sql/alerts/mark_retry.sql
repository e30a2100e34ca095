-- A failed attempt: back to pending with the next attempt time, or 'failed' for good.
UPDATE analytics_alert_notifications
SET status = CASE WHEN %(give_up)s THEN 'failed' ELSE 'pending' END,
    next_attempt_at = now() + make_interval(secs => %(delay_seconds)s),
    last_error = %(error)s
WHERE id = %(id)s AND status = 'sending'
