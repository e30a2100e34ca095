-- Drop history older than each alert's log_retention_days (delivered/finished notifications too).
WITH old_events AS (
    DELETE FROM analytics_alert_events AS e
    USING analytics_alerts AS a
    WHERE e.alert_id = a.id
      AND e.evaluated_at < now() - make_interval(days => a.log_retention_days)
      AND NOT EXISTS (
          SELECT 1 FROM analytics_alert_notifications AS n
          WHERE n.event_id = e.id AND n.status IN ('pending', 'sending')
      )
    RETURNING e.id
)
SELECT count(*) FROM old_events
