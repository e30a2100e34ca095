INSERT INTO health_checks (check_name, target, status, latency_ms, detail, dag_run_id)
VALUES (%(check_name)s, %(target)s, %(status)s, %(latency_ms)s, %(detail)s, %(dag_run_id)s)
