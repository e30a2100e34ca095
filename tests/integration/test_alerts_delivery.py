"""Outbox delivery to real servers: a local HTTP server for Slack and webhooks, aiosmtpd for email."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from include.alerts.channels import verify_signature
from include.alerts.outbox import deliver_pending
from tests.support.alerts import (
    TEST_SETTINGS,
    clean_alert_tables,
    evaluate,
    make_alert,
    notifications,
)
from tests.support.connections import connection_json, point_channels_at

SECRET = "webhook-signing-secret"
CHANNELS = [
    {"type": "slack"},
    {"type": "email", "to": ["oncall@example.com", "data@example.com"]},
    {"type": "webhook", "endpoint": "/hooks/alerts"},
]


@pytest.fixture(autouse=True)
def _clean(db):
    clean_alert_tables(db)


@pytest.fixture
def channels(monkeypatch, http_server, smtp_server):
    """The three alert connections pointed at the local servers; breakers recover after 1 s."""
    point_channels_at(
        monkeypatch,
        http_url=http_server.url,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        signing_secret=SECRET,
        from_email="alerts@example.com",
    )
    monkeypatch.setenv(
        "CIRCUIT_BREAKERS", json.dumps({"external_api": {"failure_threshold": 3, "recovery_timeout": 1}})
    )
    from hooks import circuit_breaker

    circuit_breaker._config_cache.clear()
    yield http_server, smtp_server
    circuit_breaker._config_cache.clear()


def _slack_posts(http_server):
    return [r for r in http_server.requests if r.path.startswith("/slack/")]


def _webhook_posts(http_server):
    return [r for r in http_server.requests if r.path == "/hooks/alerts"]


def test_delivery_to_slack_email_and_a_signed_webhook(db, channels):
    http_server, smtp_server = channels
    alert = make_alert(db, "revenue_drop", "SELECT 42", ">", 10, severity="critical", channels=CHANNELS)
    evaluate([alert])

    summary = deliver_pending(settings=TEST_SETTINGS)

    assert (summary.delivered, summary.retrying, summary.failed) == (3, 0, 0), summary.errors
    rows = notifications(db, alert)
    assert [r["status"] for r in rows] == ["delivered"] * 3
    assert all(r["delivered_at"] is not None and r["attempts"] == 1 for r in rows)

    [slack] = _slack_posts(http_server)
    assert slack.path == "/slack/T000/B000/XXXX"
    message = slack.json()
    assert message["text"] == "[FIRING][critical] revenue_drop: value 42 (value > 10)"
    header, fields_block, actions, context = message["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": ":red_circle: FIRING: revenue_drop", "emoji": True},
    }
    fields = [f["text"] for f in fields_block["fields"]]
    assert "*Value*\n42" in fields and "*Condition*\nvalue &gt; 10" in fields
    assert any(f.startswith("*Firing since*\n") for f in fields)
    assert actions["elements"][0]["url"].startswith("http://airflow.test/dags/alerts/runs/")
    assert context["type"] == "context"

    [mail] = smtp_server.messages
    assert mail.recipients == ["oncall@example.com", "data@example.com"]
    assert mail.mail_from == "alerts@example.com"
    assert mail.subject == "[FIRING][critical] revenue_drop: value 42 (value > 10)"
    assert mail.message["X-Alert-Event"] == "fired" and mail.message["X-Alert-Id"] == str(alert)
    email_row = next(r for r in rows if r["channel_type"] == "email")
    assert mail.message["Message-ID"] == f"<{email_row['idempotency_key']}@alerts.analytics-platform>"
    assert "Value: 42" in mail.body("plain") and "http://airflow.test/" in mail.body("plain")
    assert "<td>42</td>" in mail.body("html")

    [hook] = _webhook_posts(http_server)
    webhook_row = next(r for r in rows if r["channel_type"] == "webhook")
    assert verify_signature(SECRET, hook.header("X-Alert-Timestamp"), hook.body, hook.header("X-Alert-Signature"))
    assert not verify_signature(
        "wrong-secret", hook.header("X-Alert-Timestamp"), hook.body, hook.header("X-Alert-Signature")
    )
    body = hook.json()
    assert hook.header("Idempotency-Key") == body["idempotency_key"] == str(webhook_row["idempotency_key"])
    assert body["event"] == "alert.fired" and body["value"] == 42 and body["alert"]["name"] == "revenue_drop"
    assert hook.header("Authorization") is None  # the signing secret is never sent

    assert deliver_pending(settings=TEST_SETTINGS).delivered == 0  # a second run sends nothing


def test_slack_failing_three_times_opens_the_breaker_and_each_message_is_delivered_once(db, channels):
    from hooks.circuit_breaker import CircuitBreaker

    http_server, _ = channels
    ids = [make_alert(db, f"slack_alert_{i}", "SELECT 1", ">", 0, channels=[{"type": "slack"}]) for i in range(5)]
    evaluate(ids)
    http_server.respond_with(500, {"error": "boom"}, times=3)

    first = deliver_pending(settings=TEST_SETTINGS)

    assert (first.delivered, first.retrying, first.deferred) == (0, 3, 2)
    assert CircuitBreaker("external_api", f"127.0.0.1:{http_server.port}").status().state == "open"
    rows = notifications(db)
    assert {r["status"] for r in rows} == {"pending"}
    assert sorted(r["attempts"] for r in rows) == [0, 0, 1, 1, 1]  # refused by the breaker: not an attempt
    assert all("HTTP 500" in r["last_error"] for r in rows if r["attempts"] == 1)
    assert all("circuit breaker" in r["last_error"] for r in rows if r["attempts"] == 0)
    assert len(_slack_posts(http_server)) == 3

    import time

    time.sleep(1.1)  # the breaker's recovery timeout (1 s in this test)
    second = deliver_pending(settings=TEST_SETTINGS)

    assert second.delivered == 5, second.errors
    assert {r["status"] for r in notifications(db)} == {"delivered"}
    posts = _slack_posts(http_server)
    assert len(posts) == 3 + 5
    delivered_texts = [p.json()["text"] for p in posts[3:]]
    assert sorted(delivered_texts) == sorted(set(delivered_texts))  # each exactly once
    assert {t.split()[1].rstrip(":") for t in delivered_texts} == {f"slack_alert_{i}" for i in range(5)}
    assert deliver_pending(settings=TEST_SETTINGS).delivered == 0


class WorkerKilled(BaseException):
    """Stands in for the worker process dying between the send and the bookkeeping."""


def test_a_retry_after_a_send_does_not_send_again(db, channels):
    from include.alerts.channels import send_notification

    http_server, _ = channels
    alert = make_alert(
        db,
        "sent_then_killed",
        "SELECT 1",
        ">",
        0,
        channels=[{"type": "slack"}, {"type": "webhook", "endpoint": "/hooks/alerts"}],
    )
    evaluate([alert])

    def send_then_die(row):
        send_notification(row)
        raise WorkerKilled

    with pytest.raises(WorkerKilled):
        deliver_pending(settings=TEST_SETTINGS, send=send_then_die)
    assert len(http_server.requests) == 1
    assert sorted(r["status"] for r in notifications(db)) == ["pending", "sending"]

    retry = deliver_pending(settings=TEST_SETTINGS)  # the task's retry
    assert retry.delivered == 1
    assert len(_slack_posts(http_server)) + len(_webhook_posts(http_server)) == 2  # the claimed one is not resent
    sent_first = next(r for r in notifications(db) if r["status"] == "sending")

    # Past the sending lease the interrupted row is settled: a webhook (idempotency key) would be
    # sent again with the same key, Slack or email never.
    settled = deliver_pending(settings=replace(TEST_SETTINGS, sending_lease=0))
    final = {r["id"]: r for r in notifications(db)}[sent_first["id"]]
    if sent_first["channel_type"] == "webhook":
        assert final["status"] == "delivered" and settled.recovered == {"pending": 1}
        keys = [p.header("Idempotency-Key") for p in _webhook_posts(http_server)]
        assert keys == [str(sent_first["idempotency_key"])] * 2
    else:
        assert final["status"] == "abandoned" and "not sent again" in final["last_error"]
        assert settled.recovered == {"abandoned": 1} and len(_slack_posts(http_server)) == 1


def test_failed_deliveries_back_off_then_give_up_and_a_4xx_does_not_trip_the_breaker(db, channels):
    from hooks.circuit_breaker import CircuitBreaker

    http_server, _ = channels
    alert = make_alert(db, "rejected", "SELECT 1", ">", 0, channels=[{"type": "webhook", "endpoint": "/hooks/alerts"}])
    evaluate([alert])
    http_server.respond_with(400, {"error": "bad request"}, times=10)
    settings = replace(TEST_SETTINGS, retry_base=60, retry_max=600, max_attempts=2)

    first = deliver_pending(settings=settings)
    [row] = notifications(db)
    assert first.retrying == 1 and row["status"] == "pending" and row["attempts"] == 1
    wait = (row["next_attempt_at"] - db.execute("SELECT now()").fetchone()[0]).total_seconds()
    assert 50 < wait <= 66  # 60 s ± 10 % jitter
    assert "400" in row["last_error"]
    assert deliver_pending(settings=settings).retrying == 0  # not due yet

    db.execute("UPDATE analytics_alert_notifications SET next_attempt_at = now()")
    second = deliver_pending(settings=settings)
    [row] = notifications(db)
    assert second.failed == 1 and row["status"] == "failed" and row["attempts"] == 2
    assert CircuitBreaker("external_api", f"127.0.0.1:{http_server.port}").status().state == "closed"


def test_a_webhook_connection_without_a_secret_is_refused_with_a_clear_error(db, channels, monkeypatch, http_server):
    monkeypatch.setenv("AIRFLOW_CONN_ALERT_WEBHOOK", connection_json(conn_type="http", host=http_server.url))
    alert = make_alert(db, "unsigned", "SELECT 1", ">", 0, channels=[{"type": "webhook"}])
    evaluate([alert])
    deliver_pending(settings=TEST_SETTINGS)
    [row] = notifications(db)
    assert row["status"] == "pending" and "'alert_webhook' has no 'signing_secret' extra" in row["last_error"]
    assert http_server.requests == []


def test_the_slack_api_connection_posts_to_the_named_channel(db, monkeypatch, http_server):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_BOT",
        connection_json(conn_type="slack", password="xoxb-test-token", extra={"base_url": f"{http_server.url}/api/"}),
    )
    alert = make_alert(
        db,
        "via_api",
        "SELECT 1",
        ">",
        0,
        channels=[{"type": "slack", "connection": "slack_bot", "channel": "#data-alerts"}],
    )
    evaluate([alert])
    assert deliver_pending(settings=TEST_SETTINGS).delivered == 1
    [post] = http_server.requests
    assert post.path == "/api/chat.postMessage" and post.header("Authorization") == "Bearer xoxb-test-token"
    body = post.json()
    assert body["channel"] == "#data-alerts" and body["blocks"][0]["type"] == "header"


def test_concurrent_delivery_workers_never_send_a_notification_twice(db, channels):
    from concurrent.futures import ThreadPoolExecutor

    http_server, _ = channels
    ids = [make_alert(db, f"busy_{i:02d}", "SELECT 1", ">", 0, channels=[{"type": "slack"}]) for i in range(24)]
    evaluate(ids)

    with ThreadPoolExecutor(max_workers=3) as pool:
        summaries = list(pool.map(lambda n: deliver_pending(settings=TEST_SETTINGS, worker=f"w{n}"), range(3)))

    assert sum(s.delivered for s in summaries) == 24
    texts = [r.json()["text"] for r in _slack_posts(http_server)]
    assert len(texts) == len(set(texts)) == 24
    claimed_by = {r["claimed_by"] for r in notifications(db)}
    assert claimed_by <= {"w0", "w1", "w2"}
