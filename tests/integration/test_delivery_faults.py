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
from tests.support.connections import connection_json, point_channels_at, point_report_slack_at
from tests.support.servers import RecordedRequest, RecordingHTTPServer, SlackApiServer, free_port

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


# --------------------------------------------------------------------------- reports

RECIPIENTS = ["team@example.com"]
OWNER = "report-owner@example.com"


#: Slack's calls that post a report: the upload's completion (the message is its comment), or a message.
SLACK_POSTS = ("/api/files.completeUploadExternal", "/api/chat.postMessage")


@pytest.fixture
def report_slack(monkeypatch) -> Iterator[SlackApiServer]:
    """The Slack API server, ``#reports`` allowed through the API-token connection ``slack_reports`` to it."""
    with SlackApiServer() as slack:
        point_report_slack_at(monkeypatch, slack.url)
        yield slack


def _when_posted(action: Callable[[], None]) -> Callable[[RecordedRequest], None]:
    """A Slack server's ``before_answer`` that runs ``action`` on the call that posts (not on the lookups before it)."""

    def before_answer(request: RecordedRequest) -> None:
        if request.path.split("?", 1)[0] in SLACK_POSTS:
            action()

    return before_answer


def _slack_posts(slack: SlackApiServer) -> dict[str, int]:
    """How often Slack was asked to upload the file, post it, and post a message."""
    methods = ("/upload/", "files.completeUploadExternal", "chat.postMessage")
    return {method: len(slack.calls(method)) for method in methods}


@pytest.fixture
def report_run(warehouse, smtp_server, report_slack, tmp_path, monkeypatch) -> dict:
    """A generated report run on the fault cluster with an email, a Slack and an object-storage delivery.

    The run is planted (generating it is not under test): its file is in the archive, the
    destination ``drops`` and the Slack channel ``#reports`` (an API token: the file is uploaded)
    are allowed, the report's owner is an email address.
    """
    from psycopg.types.json import Jsonb

    from tests.integration.reports.conftest import allow_destinations, insert_report
    from tests.support.connections import smtp_connection

    archive = tmp_path / "archive"
    archive.mkdir()
    source = archive / "fault.csv"
    source.write_text("id,amount\n1,1.25\n2,2.50\n")
    destination = tmp_path / "drops" / "out"
    monkeypatch.setenv("REPORTS_STORAGE_URL", archive.as_uri())
    monkeypatch.setenv("REPORTS_STAGING_DIR", str(tmp_path / "staging"))
    monkeypatch.delenv("REPORTS_ALLOWED_DESTINATIONS", raising=False)
    allow_destinations(monkeypatch, {"name": "drops", "url": (tmp_path / "drops").as_uri()})
    monkeypatch.setenv("DELIVERY_HEARTBEAT_SECONDS", str(HEARTBEAT))
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        smtp_connection(smtp_server.host, smtp_server.port, from_email="reports@platform.test", timeout=5),
    )
    with psycopg.connect(warehouse, autocommit=True) as conn:
        report_id = insert_report(conn, name="fault", sql="SELECT 1", recipients=RECIPIENTS, owner=OWNER)
        run_id = conn.execute(
            """
            INSERT INTO analytics_report_runs (report_id, report_name, trigger, slot, run_key, sql, format,
                recipients, destinations, retention_days, statement_timeout_seconds, file_timeout_seconds,
                run_timeout_seconds, max_attachment_bytes, status, rows, bytes, file_name, location, generated_at)
            VALUES (%(report_id)s, 'fault', 'adhoc', now(), 'fault:1', 'SELECT 1', 'csv', %(recipients)s,
                %(destinations)s, 30, 60, 60, 60, 1000000, 'generated', 2, %(bytes)s, 'fault.csv', %(location)s, now())
            RETURNING id
            """,
            {
                "report_id": report_id,
                "recipients": RECIPIENTS,
                # Slack before the copy: a worker killed by Slack leaves the copy to the next one
                "destinations": Jsonb(
                    [{"url": "slack:#reports", "conn_id": None}, {"url": destination.as_uri(), "conn_id": None}]
                ),
                "bytes": source.stat().st_size,
                "location": source.as_uri(),
            },
        ).fetchone()[0]
    return {"id": run_id, "destination": destination, "source": source, "slack": report_slack}


def _report_deliveries(url: str) -> dict[str, dict]:
    rows = _rows(url, "SELECT * FROM analytics_report_deliveries ORDER BY id")
    return {r["channel"]: r for r in rows}


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_a_warehouse_restart_between_send_and_record_loses_no_outcome_in_reports(
    warehouse, cluster, smtp_server, report_run, monkeypatch
):
    """The mail server, Slack (at the call that posts the uploaded file) and the copy to object storage
    stop the warehouse once their send is done and before it is recorded; it is back 2 s later. Each
    is delivered once and recorded ``sent`` by the worker that sent it; a worker looking at the run
    the moment the warehouse is back settles nothing.
    """
    from delivery.recording import DeliveryWorker
    from hooks.warehouse import WarehouseHook
    from include.reports import run_delivery

    settled_by_others: list[list] = []

    def another_worker_looks() -> None:
        with DeliveryWorker(WarehouseHook(), heartbeat_seconds=HEARTBEAT, label="other") as other:
            settled_by_others.append(run_delivery.settle_interrupted(other, report_run["id"]))

    def stop_the_warehouse(*_: object) -> None:
        cluster.outage(OUTAGE_SECONDS, then=another_worker_looks)

    copy = run_delivery.CHANNELS["object_storage"]

    def copy_then_stop_the_warehouse(*args):
        sent = copy(*args)
        stop_the_warehouse()
        return sent

    monkeypatch.setitem(run_delivery.CHANNELS, "object_storage", copy_then_stop_the_warehouse)
    smtp_server.before_answer = stop_the_warehouse
    slack = report_run["slack"]
    slack.before_answer = _when_posted(stop_the_warehouse)
    restarts = cluster.restarts

    summary = run_delivery.deliver_run(report_run["id"], worker="reports")

    assert cluster.restarts - restarts == 3
    assert summary["sent"] == 3 and summary["status"] == "delivered", summary
    rows = _report_deliveries(warehouse)
    assert {c: (r["status"], r["attempts"]) for c, r in rows.items()} == {
        "email": ("sent", 1),
        "slack": ("sent", 1),
        "object_storage": ("sent", 1),
    }
    assert [m.recipients for m in smtp_server.messages] == [RECIPIENTS]
    assert _slack_posts(slack) == {"/upload/": 1, "files.completeUploadExternal": 1, "chat.postMessage": 0}
    assert rows["slack"]["message_id"] == "F0001"  # the uploaded file, as Slack named it
    assert _files(report_run["destination"]) == ["fault.csv"]
    assert settled_by_others == [[], [], []]  # the sending worker was alive each time


REPORT_WORKER = """
import os, signal, sys
from include.reports import run_delivery

if sys.argv[2] == "kill-after-copy":  # the copy is written, the process dies before recording it
    copy = run_delivery.CHANNELS["object_storage"]

    def copy_then_die(*args):
        copy(*args)
        os.kill(os.getpid(), signal.SIGKILL)

    run_delivery.CHANNELS["object_storage"] = copy_then_die
run_delivery.deliver_run(int(sys.argv[3]), worker=sys.argv[1])
"""


def test_a_report_worker_killed_between_send_and_record_leaves_unknown_or_copies_again(
    warehouse, smtp_server, report_run
):
    """A worker is SIGKILLed by the mail server before it hears the answer; a second one by Slack when
    it posts the uploaded file, before it hears the answer; a third one dies after writing the copy
    to object storage, before recording it.

    Once they are gone (no heartbeat for six beats), the next delivery of the run settles it: the
    email and the Slack post are ``unknown`` with the reason (not sent again), the run says so and
    the report's owner is told once; the copy is made again (the same file, once at the
    destination) and ``sent``.
    """
    from include.reports.run_delivery import DeliveryGaveUp, deliver_run

    table, slack = "analytics_report_deliveries", report_run["slack"]
    smtp_server.before_answer = _kill_the_sender(warehouse, table, "channel", "email")
    slack.before_answer = _when_posted(_kill_the_sender(warehouse, table, "channel", "slack"))
    run_id = str(report_run["id"])
    for name, fault in (("killed-mail", "-"), ("killed-slack", "-"), ("killed-copy", "kill-after-copy")):
        worker = subprocess.Popen(
            [sys.executable, "-c", REPORT_WORKER, name, fault, run_id], cwd=PROJECT_ROOT, env=os.environ.copy()
        )
        assert worker.wait(timeout=120) == -signal.SIGKILL
    smtp_server.before_answer = slack.before_answer = None
    sent = _report_deliveries(warehouse)
    for channel in ("email", "slack"):  # a later worker may have settled it already
        assert sent[channel]["status"] in ("sending", "unknown"), channel
    assert sent["object_storage"]["status"] == "sending"
    assert _slack_posts(slack) == {"/upload/": 1, "files.completeUploadExternal": 1, "chat.postMessage": 0}
    assert _files(report_run["destination"]) == ["fault.csv"]

    time.sleep(HEARTBEAT * 6 + 0.5)  # the killed workers' heartbeats are now too old
    with pytest.raises(DeliveryGaveUp, match="unknown outcome"):
        deliver_run(report_run["id"], worker="next")

    rows = _report_deliveries(warehouse)
    for channel, worker in (("email", "killed-mail"), ("slack", "killed-slack")):
        delivery = rows[channel]
        assert delivery["status"] == "unknown" and delivery["owner_told_at"] is not None, channel
        assert delivery["error"].startswith(f"outcome unknown: worker {worker}:")
        assert " claimed it at " in delivery["error"] and "no heartbeat since" in delivery["error"]
        assert "not sent again" in delivery["error"]
    assert _slack_posts(slack) == {"/upload/": 1, "files.completeUploadExternal": 1, "chat.postMessage": 0}
    assert rows["object_storage"]["status"] == "sent"
    assert _files(report_run["destination"]) == ["fault.csv"]
    assert (report_run["destination"] / "fault.csv").read_bytes() == report_run["source"].read_bytes()
    assert [m.recipients for m in smtp_server.messages if m.recipients != [OWNER]] == [RECIPIENTS]
    [notice] = [m for m in smtp_server.messages if m.recipients == [OWNER]]
    assert "2 delivery problem" in notice.subject
    assert "- email team@example.com: unknown: outcome unknown" in notice.body()
    assert "- slack #reports: unknown: outcome unknown" in notice.body()
    assert "ask the recipients" in notice.body() and "look in the channel" in notice.body()  # how to find out
    [run] = _rows(warehouse, "SELECT status, error FROM analytics_report_runs")
    assert run["status"] == "failed"
    assert "email team@example.com: unknown: outcome unknown" in run["error"]
    assert "slack #reports: unknown: outcome unknown" in run["error"]
