"""Report delivery deadlines end to end: a run not delivered by its deadline is recorded once and its
owner is told once, through the alerts' outbox and the real SMTP server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from include.alerts.outbox import deliver_pending
from tests.integration.reports.conftest import insert_report
from tests.support.alerts import TEST_SETTINGS
from tests.support.dags import run_dag
from tests.support.waiting import wait_until


def _hourly(db, name: str, sql: str, deadline: str, recipients: list[str]) -> int:
    return insert_report(
        db,
        name=name,
        sql=sql,
        schedule="0 * * * *",
        timezone="UTC",
        recipients=recipients,
        owner="owner@example.com",
        deadline=deadline,
        created_at=datetime.now(UTC) - timedelta(hours=1, minutes=5),
    )


def test_a_missed_deadline_is_recorded_and_tells_the_owner_once(db, reports_env, statsd):
    smtp = reports_env["smtp"]
    missed_id = _hourly(
        db, "hourly totals", "SELECT 1 / (count(*) - count(*)) AS boom FROM sales", "1m", ["team@example.com"]
    )
    on_time_id = _hourly(db, "hourly sales", "SELECT * FROM sales ORDER BY id", "6h", ["team@example.com"])

    first = run_dag("reports")
    second = run_dag("reports")  # the check runs again: nothing new to record or to tell

    assert first.task_states["check_deadlines"] == "success" and second.task_states["check_deadlines"] == "success"
    found = db.execute(
        "SELECT report_id, status, deadline_at - slot, deadline_missed_at IS NOT NULL FROM analytics_report_runs"
    ).fetchall()
    runs = {row[0]: row[1:] for row in found}
    assert runs[missed_id] == ("failed", timedelta(minutes=1), True)
    assert runs[on_time_id] == ("delivered", timedelta(hours=6), False)
    (missed_run,) = db.execute("SELECT id FROM analytics_report_runs WHERE report_id = %s", [missed_id]).fetchone()
    outbox = db.execute(
        "SELECT report_run_id, alert_id, kind, channel_type, channel ->> 'to', status"
        " FROM analytics_alert_notifications"
    ).fetchall()
    assert outbox == [(missed_run, None, "report_deadline", "email", '["owner@example.com"]', "pending")]

    # Counted once, by the state the run was in when the check found it (the check runs beside the
    # reports, so before or after this one failed).
    def missed_packets() -> list:
        return [p for p in list(statsd.packets) if ".reports.deadline_missed." in p.name]

    (packet,) = wait_until(missed_packets, what="the deadline_missed counter at the StatsD listener", timeout=5)
    state = packet.name.rsplit(".", 1)[1]
    assert (packet.packet_type, packet.value) == ("c", "1") and state in ("pending", "running", "failed"), packet

    # The alerts' outbox sends it through the delivery layer, once.
    assert deliver_pending(settings=TEST_SETTINGS).delivered == 1
    assert deliver_pending(settings=TEST_SETTINGS).delivered == 0
    (notice,) = [m for m in smtp.messages if "owner@example.com" in m.recipients]
    subject = " ".join(str(notice.message["Subject"]).split())
    assert subject.startswith("Report 'hourly totals' missed its delivery deadline")
    body = notice.message.get_body(preferencelist=("plain",)).get_content()
    assert f"(run {missed_run}), was not delivered by its deadline" in body and "1 minutes after its slot" in body
    assert ("it failed: " in body and "the query failed: division by zero" in body) == (state == "failed"), body
    assert (f"it is {state}" in body) == (state != "failed"), body
    assert db.execute("SELECT status FROM analytics_alert_notifications").fetchall() == [("delivered",)]
    # The report that was delivered in time told nobody; its team got its file once.
    assert len([m for m in smtp.messages if "team@example.com" in m.recipients]) == 1


def test_a_slack_owner_is_told_once_in_slack(db, reports_env, http_server, monkeypatch):
    """The check twice (called directly), then the outbox twice: one Slack message to the owner's channel."""
    from include.reports.deadlines import check_deadlines
    from include.reports.definitions import parse_request
    from include.reports.planning import plan_runs
    from tests.support.connections import connection_json

    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_ALERTS",
        connection_json(conn_type="slackwebhook", host=f"{http_server.url}/slack", password="T000/B000/XXXX"),
    )
    report_id = insert_report(
        db,
        name="hourly queue",
        sql="SELECT * FROM sales",
        schedule="0 * * * *",
        recipients=["team@example.com"],
        owner="slack:#sales-ops",
        deadline="1m",
        created_at=datetime.now(UTC) - timedelta(hours=1, minutes=5),
    )
    (run_id,) = plan_runs(parse_request({}), dag_run_id="scheduled__deadline")  # planned, never generated

    assert check_deadlines() == {"missed": [run_id], "owner_not_told": []}
    assert check_deadlines() == {"missed": [], "owner_not_told": []}
    assert deliver_pending(settings=TEST_SETTINGS).delivered == 1
    assert deliver_pending(settings=TEST_SETTINGS).delivered == 0

    (post,) = [r for r in http_server.requests if r.path.startswith("/slack")]
    text = post.json()["text"]
    assert text.startswith(":alarm_clock: Report 'hourly queue' missed its delivery deadline")
    assert f"(run {run_id})" in text and "it is pending" in text
    missed = db.execute(
        "SELECT deadline_missed_at IS NOT NULL FROM analytics_report_runs WHERE report_id = %s", [report_id]
    ).fetchone()
    assert missed == (True,)
    assert reports_env["smtp"].messages == []  # the report's own email was never sent: it was not generated
