"""The platform's task failure callback: on every task of every DAG, and never crashing.

A real failing task sending both messages is covered by ``test_alerts_dag.py``
(``report_definition_errors`` fails and its callback posts to Slack and mails ALERT_EMAIL_TO).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from include.categories import failure_notifier
from notifiers.task_failure import TaskFailureNotifier
from tests.support.connections import connection_json, smtp_connection
from tests.support.dags import dag_bag
from tests.support.servers import free_port


def _context(error: Exception) -> dict:
    ti = SimpleNamespace(
        dag_id="analytics",
        task_id="refresh_catalog",
        map_index=-1,
        try_number=3,
        run_id="scheduled__2026-01-01",
        log_url="http://localhost:8080/dags/analytics/runs/x/tasks/refresh_catalog",
    )
    return {"ti": ti, "run_id": ti.run_id, "exception": error}


def test_every_task_of_every_dag_has_the_failure_callback():
    dags = dag_bag().dags.values()
    assert dags
    for dag in dags:
        for task in dag.tasks:
            callbacks = task.on_failure_callback or []
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert any(isinstance(c, TaskFailureNotifier) for c in callbacks), f"{dag.dag_id}.{task.task_id}"


def test_the_callback_never_raises_when_channels_are_missing_or_down(monkeypatch, caplog):
    for name in ("AIRFLOW_CONN_SLACK_ALERTS", "AIRFLOW_CONN_SMTP_DEFAULT", "ALERT_EMAIL_TO"):
        monkeypatch.delenv(name, raising=False)
    failure_notifier().notify(_context(RuntimeError("nothing configured")))

    dead = free_port()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_ALERTS",
        connection_json(conn_type="slackwebhook", host=f"http://127.0.0.1:{dead}/slack", password="T/B/X"),
    )
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection("127.0.0.1", dead, retry_limit=0))
    monkeypatch.setenv("ALERT_EMAIL_TO", "ops@example.com")
    with caplog.at_level("WARNING"):
        failure_notifier().notify(_context(RuntimeError("channels down")))
    warnings = [r.getMessage() for r in caplog.records if r.name == "notifiers.task_failure"]
    assert any(m.startswith("task failure notification by slack not sent") for m in warnings), warnings
    assert any(m.startswith("task failure notification by email not sent") for m in warnings), warnings


@pytest.mark.parametrize("conn_type", ["slackwebhook", "slack"])
def test_the_callback_uses_the_slack_provider_notifiers(monkeypatch, http_server, smtp_server, conn_type):
    if conn_type == "slack":
        conn = connection_json(
            conn_type="slack", password="xoxb-1", extra={"base_url": f"{http_server.url}/api/", "channel": "#ops"}
        )
    else:
        conn = connection_json(conn_type="slackwebhook", host=f"{http_server.url}/slack", password="T/B/X")
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", conn)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        smtp_connection(smtp_server.host, smtp_server.port, from_email="airflow@example.com"),
    )
    monkeypatch.setenv("ALERT_EMAIL_TO", "ops@example.com, lead@example.com")

    failure_notifier().notify(_context(ValueError("bad <input>")))

    [post] = http_server.requests
    body = post.json()
    assert post.path == ("/slack/T/B/X" if conn_type == "slackwebhook" else "/api/chat.postMessage")
    assert "analytics.refresh_catalog" in body["text"] and "ValueError: bad <input>" in body["text"]
    if conn_type == "slack":
        assert body["channel"] == "#ops"
    [mail] = smtp_server.messages
    assert mail.recipients == ["ops@example.com", "lead@example.com"]
    assert mail.subject == "[Airflow] task analytics.refresh_catalog failed"
    assert "ValueError: bad &lt;input&gt;" in mail.body("html")
