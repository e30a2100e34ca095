-- Not attempted (its target's circuit breaker is open, or this worker ran out of time): back to
-- pending, the attempt not counted.
UPDATE analytics_alert_notifications
SET status = 'pending',
    attempts = greatest(attempts - 1, 0),
    next_attempt_at = now() + make_interval(secs => %(delay_seconds)s),
    last_error = %(error)s
WHERE id = %(id)s AND claimed_by = %(claimed_by)s AND status = 'sending'
