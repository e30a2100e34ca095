UPDATE analytics_alerts
SET state = %(state)s,
    consecutive_met = %(consecutive_met)s,
    consecutive_clear = %(consecutive_clear)s,
    state_changed_at = %(state_changed_at)s,
    triggered_since = %(triggered_since)s,
    incident_notified_at = %(incident_notified_at)s,
    last_notified_at = %(last_notified_at)s,
    last_value = %(last_value)s,
    last_error = %(last_error)s,
    last_evaluated_at = %(evaluated_at)s,
    last_run_id = %(run_id)s
WHERE id = %(alert_id)s
