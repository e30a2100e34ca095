-- The end of a job started with start.sql: final status, duration, details merged in, error.
UPDATE analytics_refresh_log
SET status      = %(status)s,
    finished_at = clock_timestamp(),
    duration_ms = round(extract(epoch FROM clock_timestamp() - started_at) * 1000)::bigint,
    details     = details || %(details)s,
    error       = %(error)s
WHERE id = %(id)s
