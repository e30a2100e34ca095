"""Outbox delivery to real servers: a local HTTP server for Slack and webhooks, aiosmtpd for email."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from delivery.webhook import verify_signature
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


@pytest.mark.parametrize("first", ["slack", "webhook"])
def test_a_worker_gone_between_send_and_record_leaves_its_row_unknown_or_resends_a_webhook(db, channels, first):
    """In process (the worker "dies" with a BaseException); the SIGKILL case is in test_delivery_faults.py."""
    from include.alerts.channels import send_notification

    http_server, smtp_server = channels
    slack, webhook = {"type": "slack"}, {"type": "webhook", "endpoint": "/hooks/alerts"}
    alert = make_alert(
        db,
        "sent_then_killed",
        "SELECT 1",
        ">",
        0,
        owner="owner@example.com",
        channels=[slack, webhook] if first == "slack" else [webhook, slack],
    )
    evaluate([alert])

    def send_then_die(row):
        send_notification(row)
        raise WorkerKilled

    with pytest.raises(WorkerKilled):
        deliver_pending(settings=TEST_SETTINGS, send=send_then_die)
    assert len(http_server.requests) == 1
    interrupted = next(r for r in notifications(db) if r["status"] == "sending")
    assert interrupted["channel_type"] == first

    retry = deliver_pending(settings=TEST_SETTINGS)  # the task's retry: that worker is gone

    final = {r["id"]: r for r in notifications(db)}[interrupted["id"]]
    if first == "webhook":  # sent again with the same idempotency key: the receiver drops the repeat
        assert retry.recovered == {"pending": 1} and final["status"] == "delivered"
        keys = [p.header("Idempotency-Key") for p in _webhook_posts(http_server)]
        assert keys == [str(interrupted["idempotency_key"])] * 2
        assert smtp_server.messages == []
    else:  # never sent twice; recorded as unknown with the reason, and the owner is told
        assert retry.recovered == {"unknown": 1} and final["status"] == "unknown"
        assert "outcome unknown" in final["last_error"] and "not sent again" in final["last_error"]
        assert "is not a registered delivery worker" in final["last_error"]  # it retired without recording
        assert len(_slack_posts(http_server)) == 1
        [notice] = smtp_server.messages
        assert notice.recipients == ["owner@example.com"]
        assert notice.subject.startswith("[DELIVERY PROBLEM] alert sent_then_killed: the fired notification by slack")
        assert "unknown" in notice.body("plain")
    assert deliver_pending(settings=TEST_SETTINGS).delivered == 0  # nothing left, nothing twice


def test_transient_failures_back_off_then_give_up(db, channels):
    http_server, smtp_server = channels
    webhook = {"type": "webhook", "endpoint": "/hooks/alerts"}
    alert = make_alert(db, "flaky", "SELECT 1", ">", 0, owner="owner@example.com", channels=[webhook])
    evaluate([alert])
    http_server.respond_with(503, {"error": "busy"}, times=10)
    settings = replace(TEST_SETTINGS, retry_base=60, retry_max=600, max_attempts=2)

    first = deliver_pending(settings=settings)
    [row] = notifications(db)
    assert first.retrying == 1 and row["status"] == "pending" and row["attempts"] == 1
    wait = (row["next_attempt_at"] - db.execute("SELECT now()").fetchone()[0]).total_seconds()
    assert 50 < wait <= 66  # 60 s ± 10 % jitter
    assert "attempt 1 of 2" in row["last_error"] and "503" in row["last_error"]
    assert deliver_pending(settings=settings).retrying == 0  # not due yet

    db.execute("UPDATE analytics_alert_notifications SET next_attempt_at = now()")
    second = deliver_pending(settings=settings)
    [row] = [r for r in notifications(db) if r["kind"] == "fired"]
    assert second.failed == 1 and row["status"] == "failed" and row["attempts"] == 2
    assert second.permanent == []  # used up its attempts: not a permanent failure
    [notice] = smtp_server.messages  # the owner is told when it gives up
    assert notice.recipients == ["owner@example.com"] and "could not be delivered" in notice.subject


def test_a_4xx_fails_for_good_at_once_tells_the_owner_once_and_does_not_count(db, channels):
    from hooks.circuit_breaker import CircuitBreaker

    http_server, smtp_server = channels
    alert = make_alert(
        db,
        "rejected",
        "SELECT 1",
        ">",
        0,
        owner="owner@example.com",
        channels=[{"type": "webhook", "endpoint": "/hooks/alerts"}],
    )
    evaluate([alert])
    http_server.respond_with(400, {"error": "bad request"}, times=10)

    first = deliver_pending(settings=TEST_SETTINGS)

    rejected = next(r for r in notifications(db) if r["kind"] == "fired")
    assert first.failed == 1 and first.retrying == 0 and len(first.permanent) == 1
    assert rejected["status"] == "failed" and rejected["attempts"] == 1
    assert "failed for good" in rejected["last_error"] and "HTTP 400" in rejected["last_error"]
    assert len(_webhook_posts(http_server)) == 1  # not retried
    assert CircuitBreaker("external_api", f"127.0.0.1:{http_server.port}").status().failures == 0
    [notice] = smtp_server.messages
    assert notice.recipients == ["owner@example.com"]
    assert "could not be delivered" in notice.subject and "HTTP 400" in notice.body("plain")
    notice_row = next(r for r in notifications(db) if r["kind"] == "delivery_problem")
    assert notice_row["about_notification_id"] == rejected["id"] and notice_row["status"] == "delivered"

    again = deliver_pending(settings=TEST_SETTINGS)
    assert (again.delivered, again.failed) == (0, 0) and len(smtp_server.messages) == 1  # told once


def test_a_webhook_connection_without_a_secret_is_refused_with_a_clear_error(db, channels, monkeypatch, http_server):
    monkeypatch.setenv("AIRFLOW_CONN_ALERT_WEBHOOK", connection_json(conn_type="http", host=http_server.url))
    alert = make_alert(db, "unsigned", "SELECT 1", ">", 0, channels=[{"type": "webhook"}])
    evaluate([alert])
    deliver_pending(settings=TEST_SETTINGS)
    [row] = notifications(db)
    assert row["status"] == "failed" and "'alert_webhook' has no 'signing_secret' extra" in row["last_error"]
    assert http_server.requests == []


def test_a_channel_whose_connection_does_not_exist_fails_at_once_and_fails_the_task(db, channels, http_server):
    from airflow.sdk.exceptions import AirflowFailException

    from include.alerts.tasks import deliver_notifications

    alert = make_alert(
        db,
        "misconfigured",
        "SELECT 1",
        ">",
        0,
        channels=[{"type": "slack", "connection": "no_such_slack"}, {"type": "webhook", "endpoint": "/hooks/alerts"}],
    )
    evaluate([alert])

    with pytest.raises(AirflowFailException, match="1 notification\\(s\\) failed for good") as failed:
        deliver_notifications()

    assert "connection 'no_such_slack' (Slack) is not defined" in str(failed.value)
    rows = {r["channel_type"]: r for r in notifications(db) if r["kind"] == "fired"}
    assert rows["slack"]["status"] == "failed" and rows["slack"]["attempts"] == 1  # no retries
    assert rows["webhook"]["status"] == "delivered"  # the others still go out
    notice = next(r for r in notifications(db) if r["kind"] == "delivery_problem")  # the owner: the other channel
    assert notice["channel_type"] == "webhook" and notice["status"] == "delivered"
    assert [p.json()["event"] for p in _webhook_posts(http_server)] == ["alert.fired", "alert.delivery_problem"]
    assert deliver_notifications()["failed"] == 0  # told once: the next round is green


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
    claimed_by = {r["claimed_by"].split(":")[0] for r in notifications(db)}
    assert claimed_by <= {"w0", "w1", "w2"}
