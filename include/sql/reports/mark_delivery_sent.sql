-- The worker that sent it records it (also over what a settling wrote while it could not reach the
-- warehouse: it knows better). %(error)s: recipients the mail server refused (the others got it).
UPDATE analytics_report_deliveries
SET status = 'sent', sent_at = now(), location = %(location)s, message_id = %(message_id)s, error = %(error)s
WHERE id = %(delivery_id)s AND claimed_by = %(worker)s AND status IN ('sending', 'unknown', 'pending')
