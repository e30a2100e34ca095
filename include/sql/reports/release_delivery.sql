-- A refused attempt (circuit breaker open), or a claim never sent, gives the claim and the attempt back.
UPDATE analytics_report_deliveries
SET status = 'pending', attempts = greatest(attempts - 1, 0), error = %(error)s
WHERE id = %(delivery_id)s AND claimed_by = %(worker)s AND status = 'sending'
