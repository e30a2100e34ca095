"""Reports people look at: the chart inline in the email (``cid:``), and Slack destinations.

Real PostgreSQL, the aiosmtpd sink, and a local server speaking the Slack Web API calls the
provider makes (``conversations.list``, ``files.getUploadURLExternal``, the upload,
``files.completeUploadExternal``, ``chat.postMessage``) and incoming webhooks.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from include.reports.definitions import parse_request
from include.reports.errors import DeliveryError
from include.reports.generation import generate_run
from include.reports.planning import plan_runs
from include.reports.run_delivery import deliver_run
from tests.integration.reports.conftest import insert_report
from tests.integration.reports.test_chart_reports import LINE_CHART, TWO_MONTHS_SQL
from tests.support.connections import point_report_slack_at
from tests.support.dags import run_dag
from tests.support.servers import SlackApiServer

BAR_CHART = {"kind": "bar", "x": "region", "y": "amount", "title": "Sales by region", "width": 500, "height": 300}
REGION_SQL = "SELECT split_part(customer, '\"', 2) AS region, amount FROM sales ORDER BY id"


@pytest.fixture
def slack(monkeypatch) -> Iterator[SlackApiServer]:
    """The Slack API server; ``slack_reports`` an API-token connection to it, ``#reports`` and ``#ops`` allowed
    (``#ops`` through the incoming-webhook connection ``slack_ops_webhook``)."""
    with SlackApiServer() as server:
        point_report_slack_at(monkeypatch, server.url)
        yield server


def _run(db, name: str, **fields) -> int:
    insert_report(db, name=name, **fields)
    (run_id,) = plan_runs(parse_request({"report_name": name}), dag_run_id=f"manual__{name.replace(' ', '_')}")
    generate_run(run_id, worker="test/generate")
    return run_id


def _attached(mail) -> dict[str, bytes]:
    """The files attached to ``mail`` (not the images its HTML shows inline)."""
    return {
        name: data
        for part in mail.message.iter_attachments()
        if (part["Content-Disposition"] or "").startswith("attachment")
        for name, data in [(part.get_filename(), part.get_payload(decode=True))]
    }


def _decoded_png(data: bytes) -> tuple[str, tuple[int, int]]:
    from PIL import Image

    Image.open(io.BytesIO(data)).verify()
    image = Image.open(io.BytesIO(data))
    return image.format, image.size


# --------------------------------------------------------------------------- inline charts in email


@pytest.mark.parametrize(
    ("fmt", "attached"),
    [("pdf", ".pdf"), ("csv", ".csv"), ("png", None)],
)
def test_a_chart_reports_email_shows_the_chart_inline_and_attaches_its_file(db, reports_env, fmt, attached):
    run_id = _run(db, f"inline {fmt}", sql=REGION_SQL, format=fmt, chart=BAR_CHART, recipients=["team@example.com"])
    deliver_run(run_id, worker="test/deliver")

    (mail,) = reports_env["smtp"].messages
    html = mail.body("html")
    images = mail.inline_images()
    assert len(images) == 1
    ((cid, png),) = images.items()
    assert f'src="cid:{cid}"' in html
    assert _decoded_png(png) == ("PNG", (500, 300))
    names = list(_attached(mail))
    if attached is None:  # a png report: the inline chart is the file
        assert names == [] and "The chart above is the report" in html
        location = db.execute("SELECT location FROM analytics_report_runs").fetchone()[0]
        assert png == Path(location.removeprefix("file://")).read_bytes()
    else:
        assert len(names) == 1 and names[0].endswith(attached), names
        assert "is attached" in html
    if fmt == "csv":  # the data file is the whole result, not the chart's aggregate
        assert _attached(mail)[names[0]].decode().count("\n") == 41


@pytest.mark.parametrize("fmt", ["pdf", "csv"])
def test_without_email_recipients_no_chart_image_is_drawn_beside_the_file(db, reports_env, tmp_path, fmt):
    drop = tmp_path / "drop"
    _run(db, f"no mail {fmt}", sql=REGION_SQL, format=fmt, chart=BAR_CHART, destinations=[drop.as_uri()])
    location = db.execute("SELECT location FROM analytics_report_runs").fetchone()[0]
    assert [p.name for p in Path(location[7:]).parent.iterdir()] == [location.rsplit("/", 1)[1]]


def test_a_png_above_the_attachment_limit_is_linked_not_shown_inline(db, reports_env):
    run_id = _run(
        db,
        "big png",
        sql=REGION_SQL,
        format="png",
        chart=BAR_CHART,
        recipients=["team@example.com"],
        max_attachment_bytes=1000,
    )
    deliver_run(run_id, worker="test/deliver")
    (mail,) = reports_env["smtp"].messages
    assert mail.inline_images() == {} and _attached(mail) == {}
    location = db.execute("SELECT location FROM analytics_report_runs").fetchone()[0]
    assert "larger than the attachment limit" in mail.body("html") and f'href="{location}"' in mail.body("html")


def test_a_pdf_whose_chart_image_is_gone_is_still_emailed_without_it(db, reports_env):
    from include.reports.run_store import chart_image_location

    run_id = _run(db, "no image", sql=REGION_SQL, format="pdf", chart=BAR_CHART, recipients=["team@example.com"])
    run = db.execute("SELECT format, chart, location FROM analytics_report_runs WHERE id = %s", [run_id]).fetchone()
    Path(chart_image_location(dict(zip(("format", "chart", "location"), run, strict=True)))[7:]).unlink()
    deliver_run(run_id, worker="test/deliver")
    (mail,) = reports_env["smtp"].messages
    assert mail.inline_images() == {} and "cid:" not in mail.body("html")
    assert [name[-4:] for name in _attached(mail)] == [".pdf"]


def test_the_chart_image_beside_a_pdf_is_removed_with_it_at_retention(db, reports_env):
    from include.reports.retention import cleanup_expired
    from include.reports.run_store import chart_image_location

    run_id = _run(
        db,
        "pdf retention",
        sql=REGION_SQL,
        format="pdf",
        chart=BAR_CHART,
        retention_days=1,
        recipients=["team@example.com"],
    )
    run = db.execute("SELECT format, chart, location FROM analytics_report_runs WHERE id = %s", [run_id]).fetchone()
    image = chart_image_location({"format": run[0], "chart": run[1], "location": run[2]})
    paths = [url.removeprefix("file://") for url in (run[2], image)]
    assert all(Path(p).stat().st_size > 0 for p in paths)
    db.execute("UPDATE analytics_report_runs SET generated_at = now() - interval '2 days'")

    assert cleanup_expired()["files_deleted"] == 2
    assert not any(Path(p).exists() for p in paths)


# --------------------------------------------------------------------------- Slack


def test_an_api_token_connection_uploads_the_chart_once_also_when_the_task_is_retried(db, reports_env, slack):
    smtp = reports_env["smtp"]
    smtp.data_reply = "451 4.3.0 try again later"  # the email after the Slack post fails: the task fails
    run_id = _run(
        db,
        "slack chart",
        sql=TWO_MONTHS_SQL,
        format="png",
        chart=LINE_CHART,
        recipients=["team@example.com"],
        destinations=["slack:#reports"],
    )
    with pytest.raises(DeliveryError, match="email team@example.com"):
        deliver_run(run_id, worker="test/try-1")
    smtp.data_reply = None
    summary = deliver_run(run_id, worker="test/try-2")  # the retry sends what is missing: the email
    assert summary["sent"] == 1 and len(smtp.messages) == 1

    (upload,) = slack.calls("/upload/")
    assert upload.body.startswith(b"\x89PNG") or b"\x89PNG" in upload.body
    start = upload.body.index(b"\x89PNG")
    assert _decoded_png(upload.body[start:])[1] == (640, 400)
    (complete,) = slack.calls("files.completeUploadExternal")
    form = slack.form(complete)
    assert form["channel_id"] == "C0REPORTS"
    assert "Report *slack chart* for " in form["initial_comment"]
    assert json.loads(form["files"])[0]["title"].endswith(".png")
    assert len(slack.calls("files.getUploadURLExternal")) == 1
    assert slack.calls("chat.postMessage") == []  # the message is the upload's comment
    rows = db.execute(
        "SELECT channel, target, status, attempts, message_id FROM analytics_report_deliveries ORDER BY id"
    ).fetchall()
    assert ("slack", "#reports", "sent", 1, "F0001") in rows
    assert db.execute("SELECT status FROM analytics_report_runs").fetchone()[0] == "delivered"


def test_the_deliver_task_retried_by_airflow_after_the_slack_post_does_not_post_again(db, reports_env, slack):
    import threading

    from tests.support.waiting import wait_until

    smtp = reports_env["smtp"]
    smtp.data_reply = "451 4.3.0 try again later"
    insert_report(
        db,
        name="retried slack",
        sql=REGION_SQL,
        format="png",
        chart=BAR_CHART,
        recipients=["team@example.com"],
        destinations=["slack:#reports", "slack:#ops"],
    )

    def accept_mail_after_the_first_failure() -> None:
        wait_until(
            lambda: db.execute("SELECT 1 FROM analytics_report_deliveries WHERE status = 'failed'").fetchone(),
            what="the email to fail after the Slack posts",
            timeout=120,
        )
        smtp.data_reply = None

    watcher = threading.Thread(target=accept_mail_after_the_first_failure, daemon=True)
    watcher.start()
    try:
        result = run_dag("reports", conf={"report_name": "retried slack"}, quick_retries=("report.deliver",))
    finally:
        watcher.join(timeout=5)

    assert result.state == "success", result.task_states
    assert result.try_numbers["report.deliver[0]"] == 2
    assert len(slack.calls("/upload/")) == 1 and len(slack.calls("files.completeUploadExternal")) == 1
    assert len([r for r in slack.requests if r.path.startswith("/services/")]) == 1
    assert len(smtp.messages) == 1
    attempts = db.execute("SELECT channel, target, status, attempts FROM analytics_report_deliveries ORDER BY id")
    assert attempts.fetchall() == [
        ("email", "team@example.com", "sent", 2),
        ("slack", "#reports", "sent", 1),
        ("slack", "#ops", "sent", 1),
    ]


def test_a_webhook_connection_posts_a_link_to_the_archived_file(db, reports_env, slack):
    run_id = _run(db, "slack link", sql=REGION_SQL, format="csv", destinations=["slack:#ops"])
    deliver_run(run_id, worker="test/deliver")
    deliver_run(run_id, worker="test/again")  # nothing left: not posted twice

    (post,) = [r for r in slack.requests if r.path.startswith("/services/")]
    location = db.execute("SELECT location FROM analytics_report_runs").fetchone()[0]
    text = post.json()["text"]
    assert "Report *slack link* for " in text and "40 rows" in text
    assert f"<{location}|{location.rsplit('/', 1)[1]}>" in text
    assert slack.calls("/upload/") == [] and slack.calls("chat.postMessage") == []
    delivery = db.execute(
        "SELECT channel, target, conn_id, status, location FROM analytics_report_deliveries"
    ).fetchone()
    assert delivery == ("slack", "#ops", "slack_ops_webhook", "sent", location)


def test_an_ad_hoc_trigger_posts_to_allowed_channels_through_the_dag(db, reports_env, slack):
    result = run_dag(
        "reports",
        conf={
            "sql": REGION_SQL,
            "format": "png",
            "chart": BAR_CHART,
            "name": "adhoc slack",
            "slack_channels": ["slack:#reports", "#ops"],
        },
    )
    assert result.state == "success", result.task_states
    assert len(slack.calls("/upload/")) == 1
    assert len([r for r in slack.requests if r.path.startswith("/services/")]) == 1
    targets = db.execute("SELECT target, status FROM analytics_report_deliveries ORDER BY target").fetchall()
    assert targets == [("#ops", "sent"), ("#reports", "sent")]


def test_a_channel_not_on_the_allow_list_is_refused_naming_it(db, reports_env, slack, capfd):
    result = run_dag("reports", conf={"sql": REGION_SQL, "slack_channels": ["slack:#random"]})
    assert result.task_states["validate_request"] == "failed"
    out = capfd.readouterr().out
    assert "field 'slack_channels': Slack channel '#random' is not allowed; allowed: #reports, #ops" in out
    assert db.execute("SELECT count(*) FROM analytics_report_runs").fetchone()[0] == 0
    assert slack.requests == []


def test_a_channel_removed_from_the_allow_list_is_not_posted_and_gives_up(db, reports_env, slack, monkeypatch):
    run_id = _run(db, "slack removed", sql=REGION_SQL, format="csv", destinations=["slack:#reports"])
    monkeypatch.setenv("REPORTS_ALLOWED_SLACK_CHANNELS", json.dumps(["#ops"]))
    with pytest.raises(DeliveryError, match="Slack channel '#reports' is not allowed"):
        deliver_run(run_id, worker="test/deliver")
    assert slack.requests == []
    status, error = db.execute("SELECT status, error FROM analytics_report_deliveries").fetchone()
    assert status == "failed" and "'#reports' is not allowed" in error


def test_each_audience_posts_only_its_own_file_to_its_own_channel(db, reports_env, slack):
    sql = "SELECT region, amount FROM (" + REGION_SQL + ") AS s WHERE region = %(region)s"
    audiences = [
        {"name": "one", "destinations": ["slack:#reports"], "params": {"region": "1"}},
        {"name": "two", "destinations": ["slack:#ops"], "params": {"region": "2"}},
    ]
    insert_report(db, name="by region", sql=sql, format="csv", parameters={"region": "0"}, audiences=audiences)
    result = run_dag("reports", conf={"report_name": "by region"})
    assert result.state == "success", result.task_states

    (upload,) = slack.calls("/upload/")
    assert {line.split(",")[0] for line in upload.body.decode().splitlines()[1:]} == {"1"}
    (complete,) = slack.calls("files.completeUploadExternal")
    assert "_one_" in json.loads(slack.form(complete)["files"])[0]["title"]
    (post,) = [r for r in slack.requests if r.path.startswith("/services/")]
    assert "_two_" in post.json()["text"] and "_one_" not in post.json()["text"]
    rows = db.execute(
        "SELECT r.audience, d.target, d.status FROM analytics_report_deliveries d"
        " JOIN analytics_report_runs r ON r.id = d.run_id ORDER BY r.audience"
    ).fetchall()
    assert rows == [("one", "#reports", "sent"), ("two", "#ops", "sent")]


def test_a_channel_slack_does_not_know_fails_for_good_and_is_not_tried_again(db, reports_env, slack):
    from airflow.sdk.exceptions import AirflowSkipException

    from include.reports.run_delivery import DeliveryGaveUp

    slack.missing_channels = {"C0REPORTS"}  # the bot was removed from it: Slack answers channel_not_found
    run_id = _run(db, "lost channel", sql=REGION_SQL, format="csv", destinations=["slack:#reports"])
    with pytest.raises(DeliveryGaveUp, match="channel_not_found"):
        deliver_run(run_id, worker="test/deliver")
    with pytest.raises(AirflowSkipException, match="is failed: nothing to deliver"):
        deliver_run(run_id, worker="test/again")
    assert len(slack.calls("files.completeUploadExternal")) == 1  # not tried again
    status, error = db.execute("SELECT status, error FROM analytics_report_deliveries").fetchone()
    assert status == "failed" and "failed for good" in error and "channel_not_found" in error
    assert db.execute("SELECT status FROM analytics_report_runs").fetchone()[0] == "failed"
