-- A job (or one item of it) starts: a 'running' row, finished by finish.sql.
INSERT INTO analytics_refresh_log (job, target, status, started_at, details, dag_run_id)
VALUES (%(job)s, %(target)s, 'running', clock_timestamp(), %(details)s, %(dag_run_id)s)
RETURNING id
