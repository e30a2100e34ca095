"""Slack destinations of reports (the channel allow-list, requests, overrides) and the inline chart of emails."""

from __future__ import annotations

import json
import re

import pytest

from include.reports.definitions import (
    InvalidReportError,
    ReportDefinition,
    definition_from_row,
    parse_request,
)
from include.reports.destinations import channel_choices, parse_allowed_channels
from include.reports.targets import Destination

CHANNELS = ["#reports", {"channel": "#Finance", "conn_id": "slack_finance_webhook"}]


@pytest.fixture(autouse=True)
def _allowed_channels(monkeypatch):
    monkeypatch.setenv("REPORTS_ALLOWED_SLACK_CHANNELS", json.dumps(CHANNELS))
    monkeypatch.delenv("REPORTS_ALLOWED_DESTINATIONS", raising=False)


def test_the_allow_list_takes_names_and_entries_with_a_connection():
    allowed = parse_allowed_channels(json.dumps(CHANNELS))
    assert [(c.channel, c.conn_id) for c in allowed] == [("#reports", None), ("#finance", "slack_finance_webhook")]
    assert channel_choices() == ["slack:#reports", "slack:#finance"]
    assert parse_allowed_channels(None) == () and parse_allowed_channels(" ") == ()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("#reports", "is not JSON"),
        ('{"channel": "#a"}', "expected a JSON list"),
        ('[{"channel": "#a", "url": "x"}]', r"\[0\]: expected '#channel'"),
        ('["#bad channel"]', r"\[0\]: '#bad channel' is not a Slack channel name"),
        ('["#a", "a"]', "channels must be unique"),
    ],
)
def test_a_bad_allow_list_names_the_setting(monkeypatch, setting, message):
    with pytest.raises(ValueError, match=f"setting REPORTS_ALLOWED_SLACK_CHANNELS.*{message}"):
        parse_allowed_channels(setting)
    monkeypatch.setenv("REPORTS_ALLOWED_SLACK_CHANNELS", setting)
    assert channel_choices() == []  # the trigger form offers nothing; validation names the setting
    with pytest.raises(InvalidReportError, match="REPORTS_ALLOWED_SLACK_CHANNELS"):
        parse_request({"sql": "SELECT 1", "slack_channels": ["#a"]})


def test_an_ad_hoc_trigger_names_allowed_channels():
    request = parse_request({"sql": "SELECT 1", "slack_channels": ["slack:#reports", "#FINANCE", "slack:#reports"]})
    assert request.slack_channels == (
        Destination("slack:#reports"),
        Destination("slack:#finance", "slack_finance_webhook"),
    )
    assert request.inline_definition().destinations == request.slack_channels
    # "slack:#channel" in the object storage field is a Slack channel too
    request = parse_request({"sql": "SELECT 1", "destination": "slack:#reports"})
    assert (request.destination, request.slack_channels) == (None, (Destination("slack:#reports"),))


@pytest.mark.parametrize(
    ("channels", "message"),
    [
        (["slack:#random"], "Slack channel '#random' is not allowed; allowed: #reports, #finance (connection"),
        ([""], "expected a Slack channel such as slack:#reports"),
        ([7], "expected a Slack channel"),
    ],
)
def test_a_channel_not_on_the_allow_list_is_refused_naming_it(channels, message):
    with pytest.raises(InvalidReportError, match=re.escape(message)) as refused:
        parse_request({"sql": "SELECT 1", "slack_channels": channels})
    assert refused.value.field == "slack_channels"


def test_without_an_allow_list_no_channel_is_allowed(monkeypatch):
    monkeypatch.delenv("REPORTS_ALLOWED_SLACK_CHANNELS")
    with pytest.raises(InvalidReportError, match="no Slack channel is allowed .*REPORTS_ALLOWED_SLACK_CHANNELS"):
        parse_request({"report_id": 1, "slack_channels": ["#reports"]})


def test_a_connection_other_than_the_channels_own_is_refused():
    row = {"name": "r", "sql": "SELECT 1", "destinations": [{"url": "slack:#finance", "conn_id": "slack_other"}]}
    with pytest.raises(InvalidReportError, match="connection 'slack_other' is not allowed there"):
        definition_from_row(row)


def test_a_stored_reports_slack_channels_are_replaced_by_the_triggers_and_its_storage_kept(monkeypatch):
    monkeypatch.setenv("REPORTS_ALLOWED_DESTINATIONS", json.dumps([{"name": "shared", "url": "file:///srv/r"}]))
    stored = definition_from_row(
        {"name": "r", "sql": "SELECT 1", "destinations": ["shared", "slack:#reports"], "recipients": ["a@example.com"]}
    )
    assert stored.destinations == (Destination("file:///srv/r"), Destination("slack:#reports"))
    changed = parse_request({"report_id": 1, "slack_channels": ["#finance"]}).apply_overrides(stored)
    assert changed.destinations == (
        Destination("file:///srv/r"),
        Destination("slack:#finance", "slack_finance_webhook"),
    )
    assert parse_request({"report_id": 1}).apply_overrides(stored).destinations == stored.destinations
    with pytest.raises(InvalidReportError, match="field 'slack_channels': needs report_id, report_name or sql"):
        parse_request({"slack_channels": ["#reports"]})
    assert isinstance(stored, ReportDefinition)


# --------------------------------------------------------------------------- the messages


def _png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def _email(**changes):
    from include.reports.delivery import ReportEmail

    fields = {
        "run_id": 3,
        "delivery_id": 9,
        "report_name": "sales <eu>",
        "slot_text": "2026-11-29 06:00 UTC",
        "recipients": ("a@example.com",),
        "subject": "s",
        "file_name": "sales.pdf",
        "rows": 12,
        "bytes": 2048,
        "attachment": "/tmp/sales.pdf",
        "link": None,
    }
    return ReportEmail(**{**fields, **changes})


def test_the_email_html_shows_the_chart_by_cid_and_says_the_file_is_attached():
    email = _email(chart_png=_png(1200, 600))
    body = email.html_body()
    assert f'<img src="cid:{email.chart_cid}" alt="chart of sales &lt;eu&gt;" width="800"' in body
    assert "is attached" in body and not email.chart_is_the_file
    assert 'width="500"' in _email(chart_png=_png(500, 300)).html_body()  # narrower: its own width


def test_a_png_reports_chart_is_its_file_and_not_attached_again():
    email = _email(file_name="sales.png", attachment="/tmp/sales.png", chart_png=_png(640, 400))
    assert email.chart_is_the_file
    assert "The chart above is the report" in email.html_body() and "is attached" not in email.html_body()
    assert "cid:" not in _email().html_body()


def test_the_slack_message_says_what_the_report_is_and_links_a_file_too_large():
    from include.reports.delivery import ReportPost

    post = ReportPost(
        report_name="sales <eu>",
        slot_text="2026-11-29 06:00 UTC",
        channel="#reports",
        file_name="sales.csv",
        rows=1234,
        bytes=3 * 1024 * 1024,
        link="https://s3.example/sales.csv?sig=1",
        too_large=True,
        note="its data did not change",
    )
    assert post.text().splitlines() == [
        ":warning: its data did not change",
        "Report *sales &lt;eu&gt;* for 2026-11-29 06:00 UTC: 1,234 rows, 3.0 MB.",
        "The file is larger than the upload limit: <https://s3.example/sales.csv?sig=1|sales.csv>",
    ]


def test_an_audience_may_post_to_slack_and_a_trigger_names_channels_only_for_one_audience():
    row = {
        "name": "by region",
        "sql": "SELECT * FROM sales WHERE region = %(region)s",
        "audiences": [
            {"name": "emea", "destinations": ["slack:#reports"], "params": {"region": "EU"}},
            {"name": "amer", "recipients": ["amer@example.com"], "params": {"region": "US"}},
        ],
    }
    stored = definition_from_row(row)
    assert stored.audiences[0].destinations == (Destination("slack:#reports"),)
    with pytest.raises(InvalidReportError, match="field 'slack_channels': the report sends to its audiences"):
        parse_request({"report_id": 1, "slack_channels": ["#finance"]}).apply_overrides(stored)
    (amer,) = (
        parse_request({"report_id": 1, "audience": "amer", "slack_channels": ["#finance"]})
        .apply_overrides(stored)
        .audiences
    )
    assert (amer.recipients, amer.destinations) == ((), (Destination("slack:#finance", "slack_finance_webhook"),))
    with pytest.raises(InvalidReportError, match=r"audiences\[0\].destinations\[0\].*'#random' is not allowed"):
        definition_from_row({**row, "audiences": [{**row["audiences"][0], "destinations": ["slack:#random"]}]})
