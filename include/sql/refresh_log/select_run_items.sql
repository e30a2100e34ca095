-- The latest row of each target of one job in one DAG run (a retried item has several rows).
SELECT DISTINCT ON (target)
       target, status, error, details, started_at, finished_at, duration_ms
FROM analytics_refresh_log
WHERE dag_run_id = %(dag_run_id)s
  AND job = %(job)s
  AND target IS NOT NULL
ORDER BY target, id DESC
