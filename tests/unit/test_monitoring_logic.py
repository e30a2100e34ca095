"""Pure logic of the monitoring tasks: percentiles, task statistics, endpoint origins."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from devstack.airflow_env import api_connection_environment
from include.monitoring.health import endpoint_origin
from include.monitoring.task_stats import percentile, summarise, window_end_of

END = datetime(2026, 11, 1, tzinfo=UTC)
START = END - timedelta(hours=24)


def test_percentile_interpolates_like_postgres_percentile_cont():
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([10.0, 1.0, 5.0], 0.0) == 1.0
    assert percentile(list(map(float, range(1, 101))), 0.95) == pytest.approx(95.05)
    with pytest.raises(ValueError, match="within"):
        percentile([1.0], 1.5)


def _ti(task_id, state, duration, try_number=1, dag_id="d"):
    return {"dag_id": dag_id, "task_id": task_id, "state": state, "duration": duration, "try_number": try_number}


def test_summarise_counts_finished_instances_per_dag_and_task():
    instances = [
        _ti("a", "success", 1.0),
        _ti("a", "success", 3.0, try_number=2),
        _ti("a", "failed", 5.0, try_number=3),
        _ti("a", "running", None),
        _ti("b", "success", 2.0, dag_id="e"),
        _ti("c", "upstream_failed", None),
    ]

    stats = {(s.dag_id, s.task_id): s for s in summarise(instances, START, END)}

    assert set(stats) == {("d", "a"), ("e", "b")}
    a = stats[("d", "a")]
    assert (a.runs, a.successes, a.failures, a.retries) == (3, 2, 1, 3)
    assert a.success_rate == pytest.approx(2 / 3)
    assert a.p50_duration_s == 3.0 and a.p95_duration_s == pytest.approx(4.8)
    assert (a.window_start, a.window_end) == (START, END)
    assert stats[("e", "b")].success_rate == 1.0


def test_window_ends_at_the_data_interval_end_or_at_run_after_for_manual_runs():
    run = SimpleNamespace(run_after=END + timedelta(minutes=3))
    assert window_end_of(END, run.run_after) == END
    # `airflow dags trigger` in Airflow 3: no logical date, so no data interval in the context.
    assert window_end_of(None, run.run_after) == END + timedelta(minutes=3)


def _conn(**fields):
    defaults = {"conn_id": "c", "conn_type": "http", "host": None, "schema": None, "port": None, "password": None}
    return SimpleNamespace(**{**defaults, **fields}, extra_dejson=fields.get("extra", {}))


@pytest.mark.parametrize(
    ("fields", "origin"),
    [
        ({"host": "https://hooks.example.com/services/T/B/secret"}, "https://hooks.example.com"),
        ({"host": "hooks.example.com", "schema": "http", "port": 8080}, "http://hooks.example.com:8080"),
        ({"host": "hooks.example.com", "schema": "analytics"}, "https://hooks.example.com"),
        (
            {"conn_type": "slackwebhook", "password": "https://hooks.slack.com/services/T/B/X"},
            "https://hooks.slack.com",
        ),
        ({"conn_type": "slackwebhook", "password": "T/B/X"}, "https://hooks.slack.com"),
        ({"conn_type": "slack", "password": "xoxb-token"}, "https://slack.com"),
        ({"host": "http://127.0.0.1:9000/hook?token=abc"}, "http://127.0.0.1:9000"),
    ],
)
def test_endpoint_origin_keeps_no_path_token_or_password(fields, origin):
    assert endpoint_origin(_conn(**fields)) == origin


def test_endpoint_origin_without_a_host_names_the_connection():
    with pytest.raises(ValueError, match="'alert_webhook' has no host"):
        endpoint_origin(_conn(conn_id="alert_webhook"))


def test_make_run_api_connection_uses_the_admin_password_it_finds_or_creates(tmp_path):
    created = json.loads(api_connection_environment(tmp_path, 8088)["AIRFLOW_CONN_AIRFLOW_API"])
    saved = json.loads((tmp_path / "simple_auth_manager_passwords.json.generated").read_text())
    assert created == {
        "conn_type": "http",
        "host": "http://localhost:8088",
        "login": "admin",
        "password": saved["admin"],
    }
    again = json.loads(api_connection_environment(tmp_path, 8088)["AIRFLOW_CONN_AIRFLOW_API"])
    assert again["password"] == saved["admin"]  # an existing password is kept
