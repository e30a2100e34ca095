UPDATE analytics_report_deliveries
SET status = 'sent', sent_at = now(), location = %(location)s, message_id = %(message_id)s,
    error = NULL, claimed_by = NULL, claim_expires_at = NULL
WHERE id = %(delivery_id)s AND status = 'sending'
