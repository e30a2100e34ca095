-- Definition and state of a batch of alerts, locked until the evaluation results are written.
SELECT id, name, description, condition, threshold, severity, channels, owner, enabled,
       consecutive_checks, recovery_checks, rearm_seconds, muted_until, dry_run,
       subject_template, message_template,
       state, consecutive_met, consecutive_clear, state_changed_at, triggered_since,
       incident_notified_at, last_notified_at, last_value, last_error, last_run_id
FROM analytics_alerts
WHERE id = ANY (%(ids)s)
ORDER BY id
FOR UPDATE
