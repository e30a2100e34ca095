-- A failed attempt, by the worker that made it; %(give_up)s marks a permanent failure (or the last
-- attempt), never tried again: its attempts are set to the maximum.
UPDATE analytics_report_deliveries
SET status = 'failed', error = %(error)s,
    attempts = CASE WHEN %(give_up)s THEN greatest(attempts, %(max_attempts)s) ELSE attempts END
WHERE id = %(delivery_id)s AND claimed_by = %(worker)s AND status = 'sending'
