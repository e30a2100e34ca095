-- A changed definition. The streak counters restart: checks of the old SQL or condition do not
-- count towards the new one.
UPDATE analytics_alerts
SET description = %(description)s, sql = %(sql)s, condition = %(condition)s, threshold = %(threshold)s,
    severity = %(severity)s, channels = %(channels)s, rearm_seconds = %(rearm_seconds)s,
    consecutive_checks = %(consecutive_checks)s, recovery_checks = %(recovery_checks)s,
    check_interval_seconds = %(check_interval_seconds)s, timeout_seconds = %(timeout_seconds)s,
    muted_until = %(muted_until)s, owner = %(owner)s, enabled = %(enabled)s, dry_run = %(dry_run)s,
    subject_template = %(subject_template)s, message_template = %(message_template)s,
    log_retention_days = %(log_retention_days)s, source = %(source)s, source_file = %(source_file)s,
    definition_hash = %(definition_hash)s, schedule = %(schedule)s, declared_reads = %(declared_reads)s,
    consecutive_met = 0, consecutive_clear = 0, updated_at = now()
WHERE name = %(name)s
RETURNING id
