-- A failed attempt; %(give_up_at)s (the maximum number of attempts) marks a permanent failure
-- that is never tried again (NULL: tried again until the attempts run out).
UPDATE analytics_report_deliveries
SET status = 'failed', error = %(error)s, claimed_by = NULL, claim_expires_at = NULL,
    attempts = greatest(attempts, coalesce(%(give_up_at)s, 0))
WHERE id = %(delivery_id)s AND status = 'sending'
