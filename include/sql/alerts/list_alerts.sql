SELECT name, source, enabled, state, severity, condition, threshold, last_value, last_evaluated_at,
       triggered_since, muted_until, last_error, schedule, reads, reads_origin, reads_note
FROM analytics_alerts
ORDER BY name
