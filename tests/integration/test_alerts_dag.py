"""The alerts DAG end to end with dag.test(): sync, create from the trigger form, evaluate, deliver, fail loudly."""

from __future__ import annotations

import html
import json
import textwrap

import pytest

from delivery.webhook import verify_signature
from tests.support.alerts import clean_alert_tables
from tests.support.connections import point_channels_at
from tests.support.dags import run_dag

SECRET = "dag-test-secret"
DEFINITIONS = """
alerts:
  - name: big_backlog
    description: Too many unprocessed events
    sql: SELECT count(*) FROM dag_test_events
    condition: ">"
    threshold: 2
    severity: critical
    owner: owner@example.com
    channels:
      - type: slack
      - type: email
        to: [oncall@example.com]
      - type: webhook
  - name: quiet_one
    sql: SELECT 0
    condition: ">"
    threshold: 5
    channels: [{type: slack}]
"""


@pytest.fixture
def alerts_environment(db, tmp_path, monkeypatch, http_server, smtp_server):
    clean_alert_tables(db)
    db.execute("DROP TABLE IF EXISTS dag_test_events")
    db.execute("CREATE TABLE dag_test_events (id int, created_at timestamptz)")
    db.execute("INSERT INTO dag_test_events SELECT g, now() - interval '5 hours' FROM generate_series(1, 3) g")
    (tmp_path / "team.yaml").write_text(textwrap.dedent(DEFINITIONS))
    (tmp_path / "bad.yaml").write_text(
        "alerts:\n  - {name: bad_alert, sql: SELECT 1, condition: '>', threshold: high}\n"
    )
    monkeypatch.setenv("ALERT_DEFINITIONS_DIR", str(tmp_path))
    monkeypatch.setenv("ALERT_EMAIL_TO", "platform@example.com")
    point_channels_at(
        monkeypatch,
        http_url=http_server.url,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        webhook_path="/hook",
        signing_secret=SECRET,
        slack_token="T1/B1/SECRET",
    )
    yield http_server, smtp_server
    db.execute("DROP TABLE IF EXISTS dag_test_events")


def test_alerts_dag_syncs_creates_evaluates_delivers_and_reports_bad_definitions(db, alerts_environment):
    http_server, smtp_server = alerts_environment

    result = run_dag(
        "alerts",
        conf={
            "create_alert": "freshness",
            "table": "public.dag_test_events",
            "timestamp_column": "created_at",
            "max_age": "2h",
            "alert_name": "events_fresh",
            "notify_slack": True,
        },
    )

    # Every step ran; the bad YAML file makes the last task fail on purpose (no retry).
    assert result.task_states == {
        "sync_definitions": "success",
        "create_threshold_alert": "success",
        "plan_batches": "success",
        "evaluate_batch[0]": "success",
        "check_evaluation": "skipped",  # every batch was evaluated
        "deliver_notifications": "success",
        "purge_history": "success",
        "report_definition_errors": "failed",
    }
    assert result.try_numbers["report_definition_errors"] == 1
    assert result.state == "failed"

    states = dict(db.execute("SELECT name, state FROM analytics_alerts").fetchall())
    assert states == {"big_backlog": "triggered", "quiet_one": "ok", "events_fresh": "triggered"}
    events = db.execute(
        "SELECT a.name, e.kind, e.dag_run_id FROM analytics_alert_events e JOIN analytics_alerts a ON a.id = e.alert_id"
    ).fetchall()
    assert sorted((name, kind) for name, kind, _ in events) == [
        ("big_backlog", "fired"),
        ("events_fresh", "fired"),
        ("quiet_one", "check"),
    ]
    assert {run for *_, run in events} == {result.run_id}
    outbox = db.execute("SELECT channel_type, status FROM analytics_alert_notifications ORDER BY id").fetchall()
    assert sorted(outbox) == [
        ("email", "delivered"),
        ("slack", "delivered"),
        ("slack", "delivered"),
        ("webhook", "delivered"),
    ]

    slack_texts = [r.json()["text"] for r in http_server.requests if r.path == "/slack/T1/B1/SECRET"]
    assert "[FIRING][critical] big_backlog: value 3 (value > 2)" in slack_texts
    assert any(t.startswith("[FIRING][warning] events_fresh: value 1") for t in slack_texts)
    failure_posts = [t for t in slack_texts if "report_definition_errors" in t]
    assert len(failure_posts) == 1 and "bad_alert" in failure_posts[0] and "threshold" in failure_posts[0]
    link = next(
        block["elements"][0]["url"]
        for r in http_server.requests
        if r.path.startswith("/slack/") and "big_backlog" in r.json()["text"]
        for block in r.json()["blocks"]
        if block["type"] == "actions"
    )
    assert link.endswith(
        f"/dags/alerts/runs/{result.run_id.replace(':', '%3A').replace('+', '%2B')}/tasks/evaluate_batch/mapped/0"
    )

    [hook] = [r for r in http_server.requests if r.path == "/hook"]
    assert verify_signature(SECRET, hook.header("X-Alert-Timestamp"), hook.body, hook.header("X-Alert-Signature"))
    assert json.loads(hook.body)["alert"]["name"] == "big_backlog"

    by_recipient = {tuple(m.recipients): m for m in smtp_server.messages}
    assert by_recipient[("oncall@example.com",)].subject == "[FIRING][critical] big_backlog: value 3 (value > 2)"
    failure_mail = by_recipient[("platform@example.com",)]
    assert failure_mail.subject == "[Airflow] task alerts.report_definition_errors failed"
    assert "bad.yaml: alert 'bad_alert': field 'threshold'" in html.unescape(failure_mail.body("html"))

    sync_log = db.execute(
        "SELECT status, error FROM analytics_refresh_log WHERE job = 'alerts.sync_definitions' AND dag_run_id = %s",
        [result.run_id],
    ).fetchone()
    assert sync_log[0] == "failed" and "bad_alert" in sync_log[1]

    # The next run: nothing new to say. The known definition error is not reported again, the
    # still-firing alerts (no rearm) are not notified again, and nothing is delivered twice.
    requests, mails = len(http_server.requests), len(smtp_server.messages)
    second = run_dag("alerts", conf={"create_alert": "none", "only_alerts": []})
    assert second.state == "success", second.task_states
    assert (len(http_server.requests), len(smtp_server.messages)) == (requests, mails)
    kinds = db.execute("SELECT kind FROM analytics_alert_events WHERE dag_run_id = %s", [second.run_id]).fetchall()
    assert sorted(k for (k,) in kinds) == ["check", "check", "check"]
