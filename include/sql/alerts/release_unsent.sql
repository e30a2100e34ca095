-- A worker leaving gives back what it claimed but never sent (a claim whose answer was lost):
-- every row it still holds 'sending' except those it sent and could not record.
UPDATE analytics_alert_notifications
SET status = 'pending', attempts = greatest(attempts - 1, 0), next_attempt_at = now()
WHERE claimed_by = %(claimed_by)s AND status = 'sending' AND NOT (id = ANY (%(sent)s::bigint[]))
