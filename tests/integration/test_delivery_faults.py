"""A send's outcome survives a warehouse restart, and a killed worker leaves "unknown", never silence or a duplicate.

The warehouse here is a PostgreSQL cluster of this module's own (started once, on a port of its
own; the machine's shared server is never stopped). The receiving servers run the fault at the
worst moment: after they took a message and before they answer, they stop the warehouse (it
starts again a few seconds later) or SIGKILL the worker process that is sending.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
import pytest

from tests.support.alerts import TEST_SETTINGS, evaluate, make_alert
from tests.support.connections import connection_json, point_channels_at
from tests.support.servers import RecordingHTTPServer, SlackApiServer, free_port

#: Beats of the delivering workers: gone after six missed beats (1.5 s).
HEARTBEAT = 0.25
#: How long the warehouse stays down: longer than a worker takes to look gone by its heartbeat alone.
OUTAGE_SECONDS = 2.0
SETTINGS = replace(TEST_SETTINGS, heartbeat_seconds=HEARTBEAT)
SECRET = "fault-signing-secret"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Cluster:
    base: Path
    port: int
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def start(self) -> None:
        from devstack.services import start_postgres_cluster

        self._handle = start_postgres_cluster(self.base, self.port)

    def stop(self) -> None:
        self._handle.stop()

    def outage(self, seconds: float, then: Callable[[], None] | None = None) -> None:
        """Stop the cluster now; start it again after ``seconds`` (then run ``then``), in the background."""
        self.stop()

        def back() -> None:
            self.start()
            self.restarts += 1
            if then is not None:
                then()

        threading.Timer(seconds, back).start()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    base = Path(tempfile.mkdtemp(prefix="delivery-faults-"))
    cluster = Cluster(base, free_port())
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def warehouse(cluster, monkeypatch) -> Iterator[str]:
    """A migrated database on the module's cluster as connection ``warehouse``; a database breaker out of the way."""
    import json

    from hooks import circuit_breaker
    from include.migrations import apply_migrations

    with psycopg.connect(f"{cluster.url}/postgres", autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS faults WITH (FORCE)")
        admin.execute("CREATE DATABASE faults")
    url = f"{cluster.url}/faults"
    with psycopg.connect(url) as conn:
        apply_migrations(conn)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", url)
    # a warehouse outage must not open the database breaker for a minute: this test is about recording
    breakers = {"database": {"failure_threshold": 1000, "recovery_timeout": 1}}
    monkeypatch.setenv("CIRCUIT_BREAKERS", json.dumps(breakers))
    circuit_breaker._config_cache.clear()
    yield url
    circuit_breaker._config_cache.clear()


def _rows(url: str, sql: str, params=()) -> list[dict]:
    from psycopg.rows import dict_row

    for _ in range(100):  # the cluster may be starting again
        try:
            with psycopg.connect(url, row_factory=dict_row) as conn:
                return conn.execute(sql, params).fetchall()
        except psycopg.OperationalError:
            time.sleep(0.2)
    raise AssertionError("the warehouse did not come back")


@pytest.fixture
def servers(monkeypatch, smtp_server) -> Iterator[tuple[SlackApiServer, RecordingHTTPServer]]:
    with SlackApiServer() as slack, RecordingHTTPServer() as webhook:
        point_channels_at(
            monkeypatch,
            http_url=webhook.url,
            smtp_host=smtp_server.host,
            smtp_port=smtp_server.port,
            signing_secret=SECRET,
        )
        slack_conn = connection_json(conn_type="slackwebhook", host=f"{slack.url}/services", password="T0/B0/fault")
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack_conn)
        yield slack, webhook


CHANNELS = {
    "email": {"type": "email", "to": ["oncall@example.com"]},
    "slack": {"type": "slack"},
    "webhook": {"type": "webhook", "endpoint": "/hooks/alerts"},
}


def _alerts(db_url: str, owner: str | None = None) -> dict[str, int]:
    """One firing alert per channel, its notification pending in the outbox."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        ids = {
            kind: make_alert(
                conn, f"fault_{kind}", "SELECT 1", ">", 0, channels=[channel], **({"owner": owner} if owner else {})
            )
            for kind, channel in CHANNELS.items()
        }
    evaluate(list(ids.values()))
    return ids


def _notifications(url: str) -> dict[str, dict]:
    rows = _rows(url, "SELECT * FROM analytics_alert_notifications WHERE kind = 'fired' ORDER BY id")
    return {r["channel_type"]: r for r in rows}


def test_a_warehouse_restart_between_send_and_record_loses_no_outcome_in_alerts(
    warehouse, cluster, servers, smtp_server
):
    """Each receiver stops the warehouse after taking its message and before answering; it is back 2 s later.

    Each message is delivered exactly once and recorded by the worker that sent it, and a second
    worker that looks at the outbox the moment the warehouse is back does not take the sending
    worker for dead (its heartbeat is older than six beats, but the warehouse only just started).
    """
    from delivery.recording import DeliveryWorker
    from hooks.warehouse import WarehouseHook
    from include.alerts.outbox import deliver_pending, settle_interrupted

    slack, webhook = servers
    _alerts(warehouse)
    settled_by_others: list[dict] = []

    def another_worker_looks() -> None:
        with DeliveryWorker(WarehouseHook(), heartbeat_seconds=HEARTBEAT, label="other") as other:
            settled_by_others.append(settle_interrupted(other, SETTINGS))

    def stop_the_warehouse(*_: object) -> None:
        cluster.outage(OUTAGE_SECONDS, then=another_worker_looks)

    smtp_server.before_answer = slack.before_answer = webhook.before_answer = stop_the_warehouse

    summary = deliver_pending(settings=SETTINGS)

    assert cluster.restarts == 3
    assert (summary.delivered, summary.retrying, summary.failed) == (3, 0, 0), summary.errors
    rows = _notifications(warehouse)
    assert {kind: (r["status"], r["attempts"]) for kind, r in rows.items()} == dict.fromkeys(CHANNELS, ("delivered", 1))
    assert len(smtp_server.messages) == 1
    assert len(slack.calls("/services/")) == 1
    assert [r.header("Idempotency-Key") for r in webhook.requests] == [str(rows["webhook"]["idempotency_key"])]
    assert settled_by_others == [{}, {}, {}]  # the sending worker was alive each time


# --------------------------------------------------------------------------- SIGKILL

WORKER = """
import sys
from dataclasses import replace
from include.alerts.outbox import deliver_pending
from tests.support.alerts import TEST_SETTINGS
deliver_pending(settings=replace(TEST_SETTINGS, heartbeat_seconds={heartbeat}), worker=sys.argv[1])
"""


def _kill_the_sender(url: str, table: str, channel_column: str, channel: str) -> Callable[..., None]:
    """A ``before_answer`` that SIGKILLs the process whose claim on a ``channel`` row is being sent."""

    def kill(*_: object) -> None:
        [row] = _rows(
            url, f"SELECT claimed_by FROM {table} WHERE status = 'sending' AND {channel_column} = %s", [channel]
        )
        pid = int(row["claimed_by"].split(":")[-2])
        os.kill(pid, signal.SIGKILL)

    return kill


def test_a_worker_killed_between_send_and_record_leaves_unknown_with_its_reason_never_a_duplicate(
    warehouse, servers, smtp_server
):
    """Three workers each claim one notification; each is SIGKILLed by its receiver before it hears the answer.

    Once they are gone (no heartbeat for six beats), the next run settles the rows: email and Slack
    become ``unknown`` with the reason (not sent again) and the owner is told; the webhook is sent
    again with the same idempotency key.
    """
    from include.alerts.outbox import deliver_pending

    slack, webhook = servers
    _alerts(warehouse, owner="owner@example.com")
    table = "analytics_alert_notifications"
    smtp_server.before_answer = _kill_the_sender(warehouse, table, "channel_type", "email")
    slack.before_answer = _kill_the_sender(warehouse, table, "channel_type", "slack")
    webhook.before_answer = _kill_the_sender(warehouse, table, "channel_type", "webhook")

    script = WORKER.format(heartbeat=HEARTBEAT)
    workers = [
        subprocess.Popen([sys.executable, "-c", script, f"killed{i}"], cwd=PROJECT_ROOT, env=os.environ.copy())
        for i in range(3)
    ]
    codes = [worker.wait(timeout=120) for worker in workers]
    assert codes == [-signal.SIGKILL] * 3
    smtp_server.before_answer = slack.before_answer = webhook.before_answer = None
    sent = _notifications(warehouse)
    assert {kind: r["status"] for kind, r in sent.items()} == dict.fromkeys(CHANNELS, "sending")

    time.sleep(HEARTBEAT * 6 + 0.5)  # the killed workers' heartbeats are now too old
    summary = deliver_pending(settings=SETTINGS)

    assert summary.recovered == {"unknown": 2, "pending": 1}
    rows = _notifications(warehouse)
    for kind in ("email", "slack"):
        assert rows[kind]["status"] == "unknown"
        assert rows[kind]["last_error"].startswith(f"outcome unknown: worker {sent[kind]['claimed_by']} claimed it")
        assert "no heartbeat since" in rows[kind]["last_error"] and "not sent again" in rows[kind]["last_error"]
    assert rows["webhook"]["status"] == "delivered"
    assert len([m for m in smtp_server.messages if m.recipients == ["oncall@example.com"]]) == 1
    assert len(slack.calls("/services/")) == 1
    keys = [r.header("Idempotency-Key") for r in webhook.requests if r.path == "/hooks/alerts"]
    assert keys == [str(rows["webhook"]["idempotency_key"])] * 2  # resent, the receiver drops the repeat
    notices = [m for m in smtp_server.messages if m.recipients == ["owner@example.com"]]
    assert sorted(m.subject.split(" by ")[1].split(" ")[0] for m in notices) == ["email", "slack"]
    assert all("has an unknown outcome" in m.subject for m in notices)
