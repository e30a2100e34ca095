-- A job that ran in one go, recorded when it ended: its duration (ms, measured by the caller, 0 for
-- a decision without work) places started_at that long before now.
INSERT INTO analytics_refresh_log (job, target, status, started_at, finished_at, duration_ms, details, error, dag_run_id)
SELECT %(job)s, %(target)s, %(status)s, ended - make_interval(secs => %(duration_ms)s / 1000.0), ended,
       round(%(duration_ms)s)::bigint, %(details)s, %(error)s, %(dag_run_id)s
FROM (SELECT clock_timestamp() AS ended) AS now
RETURNING id
