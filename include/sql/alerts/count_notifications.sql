SELECT status, count(*) FROM analytics_alert_notifications GROUP BY status
