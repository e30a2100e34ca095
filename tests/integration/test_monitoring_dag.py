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


def _finished_task_instances(run_id: str, hours: float):
    """(window start, window end, {(dag_id, task_id): [(state, duration, try_number)]}) from the metadata DB."""
    from datetime import timedelta

    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.run_id == run_id).one()
        window_end = run.data_interval_end or run.run_after
        window_start = window_end - timedelta(hours=hours)
        rows = (
            session.query(TaskInstance)
            .filter(TaskInstance.state.in_(["success", "failed"]))
            .filter(TaskInstance.end_date >= window_start, TaskInstance.end_date < window_end)
            .all()
        )
        expected: dict[tuple[str, str], list] = {}
        for ti in rows:
            expected.setdefault((ti.dag_id, ti.task_id), []).append((ti.state, ti.duration, ti.try_number))
    return window_start, window_end, expected


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

    samples_before = db.execute("SELECT count(*) FROM worker_metrics").fetchone()[0]

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
        " disk_total_bytes, load_1m, details FROM worker_metrics WHERE hostname <> 'old-host' ORDER BY id"
    ).fetchall()
    assert len(samples) == samples_before - 1 + 2  # the expired sample is gone, each run added one
    hostname, cpu, cpus, memory, memory_total, disk, disk_total, load, details = samples[-1]
    assert hostname and cpus >= 1 and memory_total > 0 and disk_total > 0
    assert 0 <= cpu <= 100 and 0 < memory <= 100 and 0 < disk <= 100 and load >= 0
    assert details["disk_path"]

    # The second run's window (ends at its data interval end) holds what the metadata DB holds.
    window_start, window_end, expected = _finished_task_instances(second.run_id, hours=24)
    stats = db.execute(
        "SELECT dag_id, task_id, runs, successes, failures, success_rate, p50_duration_s, p95_duration_s, retries,"
        " window_start FROM task_statistics WHERE window_end = %s",
        [window_end],
    ).fetchall()
    assert {(dag, task) for dag, task, *_ in stats} == set(expected)
    assert {task for dag, task, *_ in stats if dag == "monitoring"} == MONITORING_TASKS  # the first run's, at least
    for dag_id, task_id, runs, successes, failures, rate, p50, p95, retries, start in stats:
        instances = expected[(dag_id, task_id)]
        durations = [duration for _, duration, _ in instances]
        assert (runs, successes) == (len(instances), sum(state == "success" for state, _, _ in instances))
        assert failures == runs - successes and rate == pytest.approx(successes / runs)
        assert retries == sum(tries - 1 for _, _, tries in instances)
        assert min(durations) <= p50 <= p95 <= max(durations)
        assert start == window_start

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
    assert health["smtp"][3] == f"smtp:127.0.0.1:{closed_port}"  # the mail server's breaker target
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
