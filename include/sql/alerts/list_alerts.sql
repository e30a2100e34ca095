SELECT name, source, enabled, state, severity, condition, threshold, last_value, last_evaluated_at,
       triggered_since, muted_until, last_error
FROM analytics_alerts
ORDER BY name
