"""Alert SQL runs on the reader role, described first; one bad alert stays one bad alert.

Through ``dag.test()`` of the alerts DAG against the real server with real roles: every attack of
``tests/support/attacks.py`` as an alert, plus an alert that hits ``temp_file_limit`` and one that
ends its own session, in one batch with a good alert. Each bad one is recorded as ``error`` with a
clear message and its owner is told; the good one fires and is delivered; the batch and the run
succeed; nothing on the server changed; nothing counted against the reader's breaker. A
privileged reader is refused before any alert SQL runs, and that run ends failed.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from psycopg import sql

from tests.support.alerts import TEST_SETTINGS, alert_row, clean_alert_tables, make_alert, notifications
from tests.support.attacks import server_witness
from tests.support.connections import connection_json, point_channels_at
from tests.support.dags import run_dag

OWNER = "owner@example.com"
SLACK = [{"type": "slack"}]


@pytest.fixture
def alerts_setup(db, test_env, tmp_path, monkeypatch, http_server, smtp_server):
    """No YAML alerts, channels at local servers, a reader whose temporary files are limited to 1 MB."""
    clean_alert_tables(db)
    monkeypatch.setenv("ALERT_DEFINITIONS_DIR", str(tmp_path))
    monkeypatch.setenv("ALERT_MINIMUM_INTERVAL_SECONDS", str(TEST_SETTINGS.minimum_interval))
    point_channels_at(monkeypatch, http_url=http_server.url, smtp_host=smtp_server.host, smtp_port=smtp_server.port)
    reader = sql.Identifier(urlsplit(test_env.reader_url).username)
    db.execute(sql.SQL("ALTER ROLE {} SET temp_file_limit = '1MB'").format(reader))
    yield http_server, smtp_server
    db.execute(sql.SQL("ALTER ROLE {} RESET temp_file_limit").format(reader))


def _alert(db, name: str, query: str, channels: list | None = None, **fields) -> int:
    """An alert with ``query`` and ``channels`` written into the table as given (authors may write it directly)."""
    fields = {"owner": OWNER, "channels": SLACK, **fields}
    alert_id = make_alert(db, name, "SELECT 1", ">", 0, **{k: v for k, v in fields.items() if v is not None})
    db.execute("UPDATE analytics_alerts SET sql = %s WHERE id = %s", [query, alert_id])
    if channels is not None:
        db.execute("UPDATE analytics_alerts SET channels = %s WHERE id = %s", [json.dumps(channels), alert_id])
    return alert_id


def test_alert_sql_that_attacks_the_server_or_breaks_its_session_is_one_error_each(
    db, test_env, alerts_setup, redis_client
):
    http_server, smtp_server = alerts_setup
    with server_witness(test_env.database_url, test_env.platform_url) as witness:
        attacks = witness.attacks()
        ids = {
            "ends_its_own_session": _alert(
                db, "ends_its_own_session", "SELECT pg_terminate_backend(pg_backend_pid())::int"
            ),
            **{attack.name: _alert(db, attack.name, attack.sql) for attack in attacks},
            "temp_file_limit": _alert(
                db,
                "temp_file_limit",
                "SELECT count(*) FROM (SELECT g FROM generate_series(1, 2000000) g ORDER BY g DESC) s",
                timeout=60,
            ),
        }
        good = make_alert(db, "good", "SELECT 42", ">", 10, channels=SLACK)

        result = run_dag("alerts")

        witness.assert_unchanged()

    assert result.state == "success", result.task_states
    assert result.task_states["evaluate_batch[0]"] == "success"
    assert alert_row(db, good)["state"] == "triggered"
    assert any("[FIRING][warning] good: value 42" in r.json()["text"] for r in http_server.requests)

    expected = {attack.name: attack.refused for attack in attacks}
    expected["ends_its_own_session"] = "the query ended or broke its own database session (57P01"
    expected["temp_file_limit"] = "the query hit a server limit (53400: temporary file size exceeds temp_file_limit"
    told = {tuple(m.recipients): m for m in smtp_server.messages}
    for name, alert_id in ids.items():
        row = alert_row(db, alert_id)
        assert row["state"] == "error", (name, row["last_error"])
        assert expected[name] in row["last_error"], (name, row["last_error"])
        [error_note] = [n for n in notifications(db, alert_id) if n["kind"] == "error"]
        assert error_note["status"] == "delivered" and error_note["channel"]["to"] == [OWNER]
    assert (OWNER,) in told
    # the session that ended was the alert's own: the warehouse answered, so the breaker counted nothing
    from hooks.circuit_breaker import CircuitBreaker

    assert CircuitBreaker("database", "warehouse_reader").status().failures == 0


def test_a_superuser_reader_is_refused_and_the_run_is_not_a_success(db, test_env, alerts_setup, monkeypatch, capfd):
    alert = make_alert(db, "harmless", "SELECT 1", ">", 0, owner=OWNER, channels=SLACK)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_READER", test_env.database_url)  # the administrator

    result = run_dag("alerts")

    assert result.state == "failed"
    assert result.task_states["evaluate_batch[0]"] == "failed"
    assert result.try_numbers["evaluate_batch[0]"] == 1  # a configuration error: no retries
    assert result.task_states["check_evaluation"] == "failed"
    out, err = capfd.readouterr()
    admin = urlsplit(test_env.database_url).username
    assert f"connection 'warehouse_reader' (role {admin}) may not run user SQL: it is a superuser" in out + err
    row = alert_row(db, alert)
    assert row["state"] == "unknown" and row["last_error"] is None  # not the alert's fault
    assert notifications(db, alert) == []


def _xcoms(run_id: str) -> str:
    """Every XCom value of an alerts DAG run, as text."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel.value).filter(XComModel.dag_id == "alerts", XComModel.run_id == run_id).all()
    return json.dumps([value for (value,) in rows], default=str)


def test_webhook_targets_stay_under_their_connection_and_url_tokens_are_never_shown(
    db, alerts_setup, monkeypatch, capfd, api_server
):
    """An absolute endpoint is refused (nothing sent anywhere); a token in the webhook URL stays secret
    while its server fails: not in the task log, an XCom, the outbox error or the Circuit breakers page."""
    import requests

    from tests.support.servers import RecordingHTTPServer

    token = "SECRET-TOKEN-a1b2c3d4e5"
    with RecordingHTTPServer() as webhook, RecordingHTTPServer() as other_host:
        base = f"{webhook.url}/hooks/alerts?token={token}"
        monkeypatch.setenv(
            "AIRFLOW_CONN_ALERT_WEBHOOK",
            connection_json(conn_type="http", host=base, extra={"signing_secret": "s3cr3t"}),
        )
        webhook.respond_with(500, {"error": "down"}, times=5)
        webhook_to = [{"type": "webhook", "connection": "alert_webhook", "endpoint": f"{other_host.url}/x"}]
        escaping = _alert(db, "escaping", "SELECT 5", channels=webhook_to, owner=None)
        webhook_to = [{"type": "webhook", "connection": "alert_webhook", "endpoint": "/orders"}]
        failing = _alert(db, "failing", "SELECT 5", channels=webhook_to, owner=None)

        result = run_dag("alerts")

        assert other_host.requests == []  # not the other host...
        assert [r.path for r in webhook.requests] == [f"/hooks/alerts/orders?token={token}"]  # ...nor its own URL
    [refused] = notifications(db, escaping)
    assert refused["status"] == "failed" and refused["attempts"] == 1  # refused for good, at once
    assert "is not a path under the connection's URL" in refused["last_error"]
    [retried] = notifications(db, failing)
    assert retried["status"] == "pending" and "answered HTTP 500" in retried["last_error"]
    assert "token=***" in retried["last_error"]

    page = requests.get(
        f"{api_server.url}/breakers/api/breakers", headers={"Authorization": f"Bearer {api_server.token()}"}, timeout=30
    )
    assert page.status_code == 200 and "answered HTTP 500" in page.text  # the failure is shown...
    out, err = capfd.readouterr()
    shown = {"task log": out + err, "XCom": _xcoms(result.run_id), "breaker page": page.text}
    shown["outbox errors"] = json.dumps([n["last_error"] for n in notifications(db)])
    for where, text in shown.items():
        assert token not in text, f"the webhook URL's token appears in the {where}"  # ...never the token
