UPDATE analytics_alert_notifications
SET status = 'delivered', delivered_at = now(), last_error = NULL
WHERE id = %(id)s AND status = 'sending'
