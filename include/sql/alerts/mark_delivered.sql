-- The worker that sent it records the delivery (also over an 'unknown' a recovery wrote while it
-- could not reach the warehouse: it knows better). %(note)s: recipients the mail server refused.
UPDATE analytics_alert_notifications
SET status = 'delivered', delivered_at = now(), last_error = %(note)s
WHERE id = %(id)s AND claimed_by = %(claimed_by)s AND status IN ('sending', 'unknown')
