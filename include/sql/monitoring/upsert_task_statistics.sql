INSERT INTO task_statistics (
    dag_id, task_id, window_start, window_end, runs, successes, failures, success_rate,
    p50_duration_s, p95_duration_s, retries
)
VALUES (
    %(dag_id)s, %(task_id)s, %(window_start)s, %(window_end)s, %(runs)s, %(successes)s, %(failures)s,
    %(success_rate)s, %(p50_duration_s)s, %(p95_duration_s)s, %(retries)s
)
ON CONFLICT ON CONSTRAINT task_statistics_window_key DO UPDATE SET
    window_start   = EXCLUDED.window_start,
    runs           = EXCLUDED.runs,
    successes      = EXCLUDED.successes,
    failures       = EXCLUDED.failures,
    success_rate   = EXCLUDED.success_rate,
    p50_duration_s = EXCLUDED.p50_duration_s,
    p95_duration_s = EXCLUDED.p95_duration_s,
    retries        = EXCLUDED.retries,
    computed_at    = now()
