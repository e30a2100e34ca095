UPDATE analytics_report_deliveries
SET status = 'failed', error = %(error)s, claimed_by = NULL, claim_expires_at = NULL
WHERE id = %(delivery_id)s AND status = 'sending'
