"""Report audiences end to end: one scheduled slot, one file per audience with only its rows, each
delivered once; a failing audience never stops the others and is retried alone."""

from __future__ import annotations

import csv
import io
import threading
from datetime import UTC, datetime, timedelta

from tests.integration.reports.conftest import insert_report, sales_csv
from tests.support.dags import run_dag
from tests.support.waiting import wait_until

#: Each audience's rows: the sales whose id modulo 3 is its bucket (a literal % is %% with placeholders).
SQL = "SELECT * FROM sales WHERE id %% 3 = %(bucket)s ORDER BY id"


def _audience_runs(db, report_id: int) -> dict[str, tuple]:
    found = db.execute(
        "SELECT audience, id, trigger, slot, status, attempts, rows, file_name, location, error"
        " FROM analytics_report_runs WHERE report_id = %s ORDER BY id",
        [report_id],
    ).fetchall()
    return {row[0]: row[1:] for row in found}


def _mails_to(smtp, address: str):
    return [m for m in smtp.messages if address in m.recipients]


def _attached_rows(mail) -> tuple[str, list[list[str]]]:
    ((name, data),) = mail.attachments().items()
    return name, list(csv.reader(io.StringIO(data.decode())))


def _hourly_report(db, audiences: list[dict]) -> int:
    return insert_report(
        db,
        name="sales by bucket",
        sql=SQL,
        format="csv",
        schedule="0 * * * *",
        timezone="UTC",
        audiences=audiences,
        created_at=datetime.now(UTC) - timedelta(hours=1, minutes=5),
    )


def test_one_slot_sends_each_audience_only_its_rows_once(db, reports_env, tmp_path):
    smtp = reports_env["smtp"]
    report_id = _hourly_report(
        db,
        [
            {"name": "zero", "recipients": ["zero@example.com"], "params": {"bucket": 0}},
            {"name": "one", "recipients": ["one@example.com", "also-one@example.com"], "params": {"bucket": 1}},
            {"name": "two", "destinations": ["drops/two"], "params": {"bucket": 2}},
        ],
    )

    misspelt_id = insert_report(
        db,
        name="misspelt audience",
        sql=SQL,
        schedule="0 * * * *",
        audiences=[{"name": "zero", "recipients": ["zero@example.com"], "params": {"buckt": 0}}],
        created_at=datetime.now(UTC) - timedelta(hours=1, minutes=5),
    )

    result = run_dag("reports")

    assert result.state == "success", result.task_states
    # A stored report whose audience is invalid is one failed run naming the field; it sends nothing.
    ((trigger, status, error),) = db.execute(
        "SELECT trigger, status, error FROM analytics_report_runs WHERE report_id = %s", [misspelt_id]
    ).fetchall()
    assert (trigger, status) == ("invalid", "failed")
    assert "field 'audiences[0].params.buckt': the report's SQL has no %(buckt)s placeholder" in error
    runs = _audience_runs(db, report_id)
    assert sorted(runs) == ["one", "two", "zero"]
    slots = {run[2] for run in runs.values()}
    assert len(slots) == 1 and all(run[1] == "scheduled" and run[3] == "delivered" for run in runs.values())

    # Each audience's email holds its own file, with only its rows; nobody gets another's file.
    assert len(smtp.messages) == 2
    (zero_mail,) = _mails_to(smtp, "zero@example.com")
    assert zero_mail.recipients == ["zero@example.com"]
    assert str(zero_mail.message["Subject"]).startswith("Report sales by bucket for zero (")
    name, rows = _attached_rows(zero_mail)
    assert name == runs["zero"][6] and "_zero_" in name
    assert rows == sales_csv(db, "id % 3 = 0") and len(rows) > 1
    (one_mail,) = _mails_to(smtp, "one@example.com")
    assert sorted(one_mail.recipients) == ["also-one@example.com", "one@example.com"]
    assert _attached_rows(one_mail) == (runs["one"][6], sales_csv(db, "id % 3 = 1"))
    # The destination audience gets its copy only.
    copy = tmp_path / "two" / runs["two"][6]
    assert list(csv.reader(io.StringIO(copy.read_text()))) == sales_csv(db, "id % 3 = 2")
    assert [p.name for p in (tmp_path / "two").iterdir()] == [runs["two"][6]]

    # The next DAG run has nothing to do for this slot: no second file, no second email.
    again = run_dag("reports")
    assert again.state == "success", again.task_states
    assert len(_audience_runs(db, report_id)) == 3 and len(smtp.messages) == 2
    assert db.execute("SELECT count(*) FROM analytics_report_runs").fetchone()[0] == 4


def test_a_failing_audience_is_retried_alone(db, reports_env):
    """One audience's query fails (for good), one's mail server refuses it for now; the third is sent once,
    the refused one is sent by its task's retry, and nothing is sent twice."""
    smtp = reports_env["smtp"]
    smtp.refused = {"flaky@example.com": "451 4.2.1 mailbox busy, try again later"}
    report_id = _hourly_report(
        db,
        [
            {"name": "good", "recipients": ["good@example.com"], "params": {"bucket": 0}},
            {"name": "flaky", "recipients": ["flaky@example.com"], "params": {"bucket": 1}},
            {"name": "broken", "recipients": ["broken@example.com"], "params": {"bucket": "not a number"}},
        ],
    )

    def accept_after_the_first_failure() -> None:
        wait_until(
            lambda: db.execute("SELECT 1 FROM analytics_report_deliveries WHERE status = 'failed'").fetchone(),
            what="the flaky audience's first delivery to fail",
            timeout=120,
        )
        smtp.refused = {}

    watcher = threading.Thread(target=accept_after_the_first_failure, daemon=True)
    watcher.start()
    try:
        result = run_dag("reports", quick_retries=("report.deliver",))
    finally:
        watcher.join(timeout=5)

    runs = _audience_runs(db, report_id)
    order = sorted(runs, key=lambda name: runs[name][0])  # map index = order of the planned run ids
    index = {name: order.index(name) for name in runs}
    states, tries = result.task_states, result.try_numbers
    assert states[f"report.generate[{index['broken']}]"] == "failed"
    assert states[f"report.generate[{index['good']}]"] == "success"
    assert states[f"report.deliver[{index['good']}]"] == "success"
    assert tries[f"report.deliver[{index['good']}]"] == 1
    assert states[f"report.deliver[{index['flaky']}]"] == "success"
    assert tries[f"report.deliver[{index['flaky']}]"] == 2  # retried alone
    assert result.state == "failed"  # the broken audience's task failed

    assert runs["good"][3] == "delivered" and runs["flaky"][3] == "delivered"
    assert runs["broken"][3] == "failed" and "the query failed" in runs["broken"][8]
    assert "integer" in runs["broken"][8]
    assert [len(_mails_to(smtp, f"{a}@example.com")) for a in ("good", "flaky", "broken")] == [1, 1, 0]
    assert _attached_rows(_mails_to(smtp, "flaky@example.com")[0])[1] == sales_csv(db, "id % 3 = 1")
    deliveries = db.execute(
        "SELECT r.audience, d.status, d.attempts FROM analytics_report_deliveries d"
        " JOIN analytics_report_runs r ON r.id = d.run_id ORDER BY r.audience"
    ).fetchall()
    assert deliveries == [("flaky", "sent", 2), ("good", "sent", 1)]
    # The good audience was generated once, not again when the flaky one was retried.
    assert runs["good"][4] == 1

    # Later DAG runs send nothing again.
    run_dag("reports")
    assert len(smtp.messages) == 2
