-- A job that finished at once (skipped, or a decision without work): one complete row.
INSERT INTO analytics_refresh_log (job, target, status, started_at, finished_at, duration_ms, details, error, dag_run_id)
VALUES (%(job)s, %(target)s, %(status)s, clock_timestamp(), clock_timestamp(), 0, %(details)s, %(error)s, %(dag_run_id)s)
RETURNING id
