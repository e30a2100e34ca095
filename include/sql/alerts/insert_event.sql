INSERT INTO analytics_alert_events (
    alert_id, evaluated_at, kind, state_before, state_after, value, previous_value, condition_met,
    threshold, error, duration_ms, notified, note, dag_run_id, trigger, triggered_by
) VALUES (
    %(alert_id)s, %(evaluated_at)s, %(kind)s, %(state_before)s, %(state_after)s, %(value)s,
    %(previous_value)s, %(condition_met)s, %(threshold)s, %(error)s, %(duration_ms)s, %(notified)s,
    %(note)s, %(dag_run_id)s, %(trigger)s, %(triggered_by)s
)
RETURNING id
