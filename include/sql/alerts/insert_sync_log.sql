INSERT INTO analytics_refresh_log (job, target, status, started_at, finished_at, duration_ms, details, error, dag_run_id)
VALUES ('alerts.sync_definitions', %(target)s, %(status)s, %(started_at)s, now(),
        (extract(epoch FROM now() - %(started_at)s) * 1000)::bigint, %(details)s, %(error)s, %(dag_run_id)s)
