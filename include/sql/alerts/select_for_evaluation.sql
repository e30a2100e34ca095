-- The definitions of a batch of alerts (what to run; the state is re-read under lock when writing).
SELECT id, name, sql, timeout_seconds
FROM analytics_alerts
WHERE id = ANY (%(ids)s)
ORDER BY id
