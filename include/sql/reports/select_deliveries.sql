SELECT id, run_id, channel, target, conn_id, status, attempts, claimed_by, claimed_at,
       location, message_id, error, sent_at, owner_told_at
FROM analytics_report_deliveries
WHERE run_id = %(run_id)s
ORDER BY id
