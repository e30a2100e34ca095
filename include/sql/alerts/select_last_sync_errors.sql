-- The errors the previous sync of the alert definitions reported (a JSON list of messages).
SELECT details -> 'errors'
FROM analytics_refresh_log
WHERE job = 'alerts.sync_definitions'
ORDER BY started_at DESC, id DESC
LIMIT 1
