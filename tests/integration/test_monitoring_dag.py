"""The monitoring DAG end to end against the real warehouse, Redis, SMTP server, HTTP endpoints and api-server."""

from __future__ import annotations

import json

import pytest

from tests.support.dags import run_dag
from tests.support.servers import free_port

MONITORING_TASKS = {
    "apply_schema_migrations",
    "check_health",
    "collect_system_metrics",
    "compute_task_statistics",
    "cleanup_expired_rows",
}


def _health_rows(db, run_id):
    rows = db.execute(
        "SELECT check_name, status, latency_ms, detail, target FROM health_checks WHERE dag_run_id = %s",
        [run_id],
    ).fetchall()
    return {name: (status, latency, detail, target) for name, status, latency, detail, target in rows}


def test_monitoring_dag_records_health_system_metrics_and_task_statistics(db, monitored_services):
    smtp_server, http_server = monitored_services
    db.execute(
        "INSERT INTO health_checks (check_name, target, status, latency_ms, checked_at) VALUES"
        " ('old', 'x', 'ok', 1, now() - interval '31 days'), ('recent', 'x', 'ok', 1, now() - interval '29 days')"
    )
    db.execute("INSERT INTO worker_metrics (hostname, collected_at) VALUES ('old-host', now() - interval '31 days')")
    db.execute(
        "INSERT INTO task_statistics (dag_id, task_id, window_start, window_end, runs, successes, failures,"
        " computed_at) VALUES ('old', 't', now() - interval '92 days', now() - interval '91 days', 0, 0, 0,"
        " now() - interval '91 days')"
    )

    first = run_dag("monitoring")
    second = run_dag("monitoring")  # its statistics window ends when it starts: after the first run

    for result in (first, second):
        assert result.state == "success", result.task_states
        assert set(result.task_states) == MONITORING_TASKS

    health = _health_rows(db, second.run_id)
    assert {name: status for name, (status, *_) in health.items()} == {
        "warehouse": "ok",
        "redis": "ok",
        "smtp": "ok",
        "slack": "ok",
        "webhook": "ok",
    }
    assert all(latency >= 0 for _, latency, _, _ in health.values())
    assert health["slack"][3] == http_server.url  # the origin only: no webhook token in the record
    # Reachability is probed with GET; nothing is posted to Slack or the webhook, no mail is sent.
    assert {(r.method, r.path) for r in http_server.requests} == {("GET", "/")}
    assert smtp_server.messages == []

    samples = db.execute(
        "SELECT hostname, cpu_percent, cpu_count, memory_percent, memory_total_bytes, disk_percent,"
        " disk_total_bytes, load_1m, details FROM worker_metrics WHERE hostname <> 'old-host'"
    ).fetchall()
    assert len(samples) == 2
    hostname, cpu, cpus, memory, memory_total, disk, disk_total, load, details = samples[-1]
    assert hostname and cpus >= 1 and memory_total > 0 and disk_total > 0
    assert 0 <= cpu <= 100 and 0 < memory <= 100 and 0 < disk <= 100 and load >= 0
    assert details["disk_path"]

    stats = db.execute(
        "SELECT task_id, runs, successes, failures, success_rate, p50_duration_s, p95_duration_s, retries,"
        " window_end, window_start FROM task_statistics WHERE dag_id = 'monitoring'"
    ).fetchall()
    by_task = {row[0]: row for row in stats}
    assert set(by_task) == MONITORING_TASKS  # every task of the first run, read through the REST API
    for task_id, runs, successes, failures, rate, p50, p95, retries, window_end, window_start in stats:
        assert runs >= 1 and successes == runs and failures == 0 and rate == 1.0, task_id
        assert 0 <= p50 <= p95 and retries == 0, task_id
        assert (window_end - window_start).total_seconds() == 24 * 3600

    # Retention: only the rows past their table's retention are gone.
    assert [n for (n,) in db.execute("SELECT check_name FROM health_checks WHERE check_name IN ('old', 'recent')")] == [
        "recent"
    ]
    assert db.execute("SELECT count(*) FROM worker_metrics WHERE hostname = 'old-host'").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM task_statistics WHERE dag_id = 'old'").fetchone()[0] == 0


def test_unreachable_smtp_server_fails_its_check_while_the_others_pass(db, monitored_services, monkeypatch):
    closed_port = free_port()
    smtp = {"conn_type": "smtp", "host": "127.0.0.1", "port": closed_port, "extra": {"disable_ssl": True}}
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(smtp))

    result = run_dag("monitoring")

    assert result.state == "failed"
    assert result.task_states["check_health"] == "failed"
    assert result.try_numbers["check_health"] == 1  # a failed check is not retried: the next run re-checks
    assert {t: s for t, s in result.task_states.items() if t != "check_health"} == dict.fromkeys(
        MONITORING_TASKS - {"check_health"}, "success"
    )
    health = _health_rows(db, result.run_id)
    assert health["smtp"][0] == "failed"
    assert "refused" in health["smtp"][2].lower()
    assert health["smtp"][3] == f"127.0.0.1:{closed_port}"
    assert {name: status for name, (status, *_) in health.items() if name != "smtp"} == dict.fromkeys(
        ("warehouse", "redis", "slack", "webhook"), "ok"
    )


def test_channels_without_a_connection_are_skipped(db, monkeypatch):
    from include.monitoring.health import run_health_checks

    for conn_id in ("SMTP_DEFAULT", "SLACK_ALERTS", "ALERT_WEBHOOK"):
        monkeypatch.delenv(f"AIRFLOW_CONN_{conn_id}", raising=False)

    results = run_health_checks(dag_run_id="manual-check")

    assert [r["check_name"] for r in results] == ["warehouse", "redis"]
    rows = db.execute("SELECT check_name FROM health_checks WHERE dag_run_id = 'manual-check'").fetchall()
    assert sorted(n for (n,) in rows) == ["redis", "warehouse"]


def test_slack_endpoint_answering_5xx_is_a_failed_check(monkeypatch, http_server):
    from include.monitoring.health import check_http_endpoint

    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps({"conn_type": "slackwebhook", "host": http_server.url}))
    http_server.respond_with(503, "down for maintenance")

    result = check_http_endpoint("slack", "slack_alerts")

    assert result.status == "failed" and "HTTP 503" in result.detail
    assert result.target == http_server.url


def test_rest_api_hook_names_the_connection_when_credentials_are_refused(monkeypatch, api_server):
    from hooks.airflow_api import AirflowApiHook

    api = {"conn_type": "http", "host": api_server.url, "login": "admin", "password": "wrong"}
    monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API", json.dumps(api))

    with pytest.raises(PermissionError, match="connection 'airflow_api'.*login and password"):
        list(AirflowApiHook().iter_task_instances({}))
