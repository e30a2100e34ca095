"""The reports DAG end to end: real PostgreSQL, a real SMTP server, moto's S3 server."""

from __future__ import annotations

import csv
import io
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.reports.conftest import S3_CONN_ID, allow_destinations, insert_report, plant_run, sales_csv
from tests.support.dags import run_dag
from tests.support.waiting import wait_until


def _runs(db, report_id=None):
    query = (
        "SELECT id, report_id, trigger, slot, status, rows, bytes, file_name, location, error"
        " FROM analytics_report_runs"
    )
    if report_id is not None:
        return db.execute(query + " WHERE report_id = %s ORDER BY id", [report_id]).fetchall()
    return db.execute(query + " ORDER BY id").fetchall()


def _csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode())))


def _xlsx_rows(data: bytes) -> list[list]:
    import openpyxl

    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    return [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]


def _mails_to(smtp, address):
    return [m for m in smtp.messages if address in m.recipients]


def _latest_slot(minute_step: int) -> datetime:
    now = datetime.now(UTC)
    return now.replace(minute=now.minute - now.minute % minute_step, second=0, microsecond=0)


def test_scheduled_run_delivers_each_due_report_once_and_refuses_writing_sql(
    db, reports_env, s3_server, bucket, monkeypatch
):
    allow_destinations(monkeypatch, {"name": "exports", "url": f"s3://{bucket}", "conn_id": S3_CONN_ID})
    smtp = reports_env["smtp"]
    created = datetime.now(UTC) - timedelta(hours=3, minutes=5)  # three hourly slots missed
    paid_id = insert_report(
        db,
        name="paid sales",
        sql="SELECT * FROM sales WHERE paid = %(paid)s ORDER BY id",
        parameters={"paid": True},
        format="csv",
        schedule="0 * * * *",
        timezone="UTC",
        recipients=["team@example.com"],
        destinations=[{"url": f"s3://{bucket}/exports", "conn_id": S3_CONN_ID}],
        created_at=created,
    )
    xlsx_id = insert_report(
        db,
        name="all sales",
        sql="SELECT id, customer, amount, sold_at, paid FROM sales ORDER BY id",
        format="xlsx",
        schedule="*/30 * * * *",
        timezone="Europe/Berlin",
        recipients=["boss@example.com"],
        created_at=created,
    )
    writer_id = insert_report(
        db,
        name="sneaky writer",
        sql="INSERT INTO report_victim VALUES (1) RETURNING id",
        schedule="0 * * * *",
        recipients=["team@example.com"],
        created_at=created,
    )
    insert_report(db, name="not due yet", sql="SELECT 1", schedule="0 0 1 1 *", recipients=["x@example.com"])
    insert_report(db, name="disabled", sql="SELECT 1", schedule="* * * * *", enabled=False, created_at=created)
    broken_id = insert_report(db, name="broken cron", sql="SELECT 1", schedule="61 * * * *", created_at=created)
    expired, fresh = reports_env["archive"] / "expired.csv", reports_env["archive"] / "fresh.csv"
    expired.parent.mkdir(parents=True)
    expired.write_text("id\n1\n"), fresh.write_text("id\n1\n")
    plant_run(db, location=expired.as_uri(), age_days=40, retention_days=30)
    plant_run(db, location=fresh.as_uri(), age_days=10, retention_days=30)

    result = run_dag("reports")

    # The writing report fails on its own; the others are generated and delivered.
    assert result.task_states["validate_request"] == "success"
    assert result.task_states["plan_runs"] == "success"
    assert result.task_states["cleanup_expired_files"] == "success"
    generate_states = sorted(s for t, s in result.task_states.items() if t.startswith("report.generate"))
    assert generate_states == ["failed", "success", "success"], result.task_states
    assert result.state == "failed"

    # Missed slots are caught up once, for the latest slot.
    (paid_run,) = _runs(db, paid_id)
    assert paid_run[2:5] == ("scheduled", _latest_slot(60), "delivered")
    assert paid_run[5] == 20
    (xlsx_run,) = _runs(db, xlsx_id)
    assert xlsx_run[3] == _latest_slot(30) and xlsx_run[4] == "delivered"

    # The email's attachment is the query's rows; the uploaded object is the same file.
    (mail,) = _mails_to(smtp, "team@example.com")
    attachments = mail.attachments()
    assert list(attachments) == [paid_run[7]]
    assert _csv_rows(attachments[paid_run[7]]) == sales_csv(db, "paid")
    assert s3_server.get(bucket, f"exports/{paid_run[7]}") == attachments[paid_run[7]]
    assert mail.message["Message-ID"].startswith(f"<report-run-{paid_run[0]}.")

    (boss_mail,) = _mails_to(smtp, "boss@example.com")
    rows = _xlsx_rows(next(iter(boss_mail.attachments().values())))
    expected = db.execute("SELECT id, customer, amount, sold_at, paid FROM sales ORDER BY id").fetchall()
    assert rows[0] == ["id", "customer", "amount", "sold_at", "paid"]
    assert [(r[0], r[1], r[4]) for r in rows[1:]] == [(e[0], e[1], e[4]) for e in expected]
    assert [float(r[2]) for r in rows[1:]] == [float(e[2]) for e in expected]

    # SQL that writes is refused before it runs, and recorded.
    (writer_run,) = _runs(db, writer_id)
    assert writer_run[4] == "failed" and "INSERT statements never run" in writer_run[9]
    assert db.execute("SELECT count(*) FROM report_victim").fetchone()[0] == 0

    # An invalid definition is recorded once, naming the field; reports not due or disabled do not run.
    (broken,) = _runs(db, broken_id)
    assert broken[2] == "invalid" and broken[4] == "failed" and "'schedule'" in broken[9]
    assert len(_runs(db)) == 4 + 2  # and the two planted ones

    # Files past their retention are deleted by the same DAG run; younger ones stay.
    assert not expired.exists() and fresh.exists()

    # The next run finds nothing new to do: no second email, no second run.
    second = run_dag("reports")
    assert second.task_states["plan_runs"] == "success"
    assert len(_runs(db)) == 4 + 2
    assert len(smtp.messages) == 2


def test_adhoc_report_by_name_with_overrides_sends_a_link_when_too_large(
    db, reports_env, s3_server, bucket, monkeypatch: pytest.MonkeyPatch
):
    import requests

    smtp = reports_env["smtp"]
    monkeypatch.setenv("REPORTS_STORAGE_URL", f"s3://{bucket}/archive")
    monkeypatch.setenv("REPORTS_STORAGE_CONN_ID", S3_CONN_ID)
    monkeypatch.setenv("REPORTS_MAX_ATTACHMENT_BYTES", "100")
    insert_report(
        db, name="sales export", sql="SELECT * FROM sales ORDER BY id", format="xlsx", recipients=["old@example.com"]
    )

    result = run_dag(
        "reports", conf={"report_name": "sales export", "format": "csv.gz", "recipients": ["new@example.com"]}
    )

    assert result.state == "success", result.task_states
    (run,) = _runs(db)
    assert run[2] == "adhoc" and run[4] == "delivered" and run[7].endswith(".csv.gz")
    (mail,) = smtp.messages
    assert mail.recipients == ["new@example.com"] and mail.attachments() == {}
    link = mail.body("html").split('href="')[1].split('"')[0].replace("&amp;", "&")
    import gzip

    downloaded = requests.get(link, timeout=10)
    assert downloaded.status_code == 200
    assert _csv_rows(gzip.decompress(downloaded.content)) == sales_csv(db)
    archived = f"archive/sales_export/{run[3]:%Y/%m/%d}/{run[7]}"
    assert s3_server.keys(bucket, "archive/") == [archived]
    # the delivery keeps the file's URL, not the signed link
    assert db.execute("SELECT location FROM analytics_report_deliveries").fetchone()[0] == f"s3://{bucket}/{archived}"


def test_adhoc_inline_sql_from_conf(db, reports_env, tmp_path):
    destination = tmp_path / "drop"

    result = run_dag(
        "reports",
        conf={
            "sql": "SELECT id, amount FROM sales WHERE id <= %(last)s ORDER BY id",
            "parameters": {"last": 3},
            "format": "csv",
            "destination": destination.as_uri(),
            "name": "first three",
        },
    )

    assert result.state == "success", result.task_states
    (run,) = _runs(db)
    assert run[1] is None and run[2] == "adhoc" and run[5] == 3
    (copy,) = destination.iterdir()
    assert copy.name == run[7] and copy.name.startswith("first_three_")
    assert _csv_rows(copy.read_bytes()) == [["id", "amount"], ["1", "1.25"], ["2", "2.50"], ["3", "3.75"]]
    assert reports_env["smtp"].messages == []


def test_invalid_conf_fails_the_first_task_naming_the_field(db, reports_env, capfd):
    from airflow.exceptions import ParamValidationError

    # A value of the wrong type is refused by the Params when the run is created.
    with pytest.raises(ParamValidationError, match="report_id"):
        run_dag("reports", conf={"report_id": "seven"})

    # Values the Params cannot judge fail the first task, naming the field.
    result = run_dag("reports", conf={"report_id": 7})

    assert result.state == "failed"
    assert result.task_states["validate_request"] == "failed"
    assert result.try_numbers["validate_request"] == 1  # no retries for a bad request
    assert result.task_states["plan_runs"] == "upstream_failed"
    out, err = capfd.readouterr()
    assert "invalid report request: field 'report_id': no report with id 7" in out + err
    assert _runs(db) == []


def test_retried_delivery_sends_the_email_once(db, reports_env, s3_server, monkeypatch: pytest.MonkeyPatch):
    """The S3 upload fails after the email went out; the retry uploads but does not email again."""

    smtp = reports_env["smtp"]
    missing_bucket = f"created-later-{int(time.time())}"
    allow_destinations(monkeypatch, {"url": f"s3://{missing_bucket}/out", "conn_id": S3_CONN_ID})
    insert_report(
        db,
        name="retried",
        sql="SELECT * FROM sales ORDER BY id",
        recipients=["team@example.com"],
        destinations=[f"s3://{S3_CONN_ID}@{missing_bucket}/out"],
    )

    def create_bucket_after_the_failure() -> None:
        wait_until(
            lambda: db.execute("SELECT 1 FROM analytics_report_deliveries WHERE status = 'failed'").fetchone(),
            what="the first upload to fail",
            timeout=60,
        )
        s3_server.create_bucket(missing_bucket)

    watcher = threading.Thread(target=create_bucket_after_the_failure, daemon=True)
    watcher.start()
    try:
        result = run_dag("reports", conf={"report_name": "retried"}, quick_retries=("report.deliver",))
    finally:
        watcher.join(timeout=5)

    assert result.state == "success", result.task_states
    assert result.try_numbers["report.deliver[0]"] == 2
    assert len(smtp.messages) == 1
    (run,) = _runs(db)
    assert run[4] == "delivered"
    assert s3_server.keys(missing_bucket) == [f"out/{run[7]}"]
    attempts = db.execute("SELECT channel, status, attempts FROM analytics_report_deliveries ORDER BY id").fetchall()
    assert attempts == [("email", "sent", 1), ("object_storage", "sent", 2)]
