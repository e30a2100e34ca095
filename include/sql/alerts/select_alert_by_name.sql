SELECT id, name, sql, condition, threshold, timeout_seconds, last_value, state, enabled
FROM analytics_alerts
WHERE name = %(name)s
