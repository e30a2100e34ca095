INSERT INTO analytics_alerts (
    name, description, sql, condition, threshold, severity, channels, rearm_seconds,
    consecutive_checks, recovery_checks, check_interval_seconds, timeout_seconds, muted_until,
    owner, enabled, dry_run, subject_template, message_template, log_retention_days,
    source, source_file, definition_hash, schedule, declared_reads
) VALUES (
    %(name)s, %(description)s, %(sql)s, %(condition)s, %(threshold)s, %(severity)s, %(channels)s,
    %(rearm_seconds)s, %(consecutive_checks)s, %(recovery_checks)s, %(check_interval_seconds)s,
    %(timeout_seconds)s, %(muted_until)s, %(owner)s, %(enabled)s, %(dry_run)s, %(subject_template)s,
    %(message_template)s, %(log_retention_days)s, %(source)s, %(source_file)s, %(definition_hash)s,
    %(schedule)s, %(declared_reads)s
)
RETURNING id
