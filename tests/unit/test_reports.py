"""Pure logic of the reports feature: request and definition validation, due slots, cells, email."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from include.reports.definitions import (
    InvalidReportError,
    ReportDefinition,
    parse_request,
    validate_definition,
)
from include.reports.schedule import due_slot, latest_slot
from include.reports.storage import safe_name
from include.reports.targets import Destination, parse_destination


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


ALLOWED = [
    {"name": "exports", "url": "s3://bucket/some", "conn_id": "aws_x"},
    {"name": "shared", "url": "file:///srv/reports"},
    {"url": "s3://b/p", "conn_id": "aws_reports"},
    {"url": "nosuchfs://bucket"},
]


@pytest.fixture(autouse=True)
def _allowed_destinations(monkeypatch):
    monkeypatch.setenv("REPORTS_ALLOWED_DESTINATIONS", json.dumps(ALLOWED))


# --------------------------------------------------------------------------- requests


def test_empty_conf_is_a_scheduled_run():
    assert parse_request({}).mode == "scheduled"
    assert parse_request(None).mode == "scheduled"
    # the UI form sends every field, empty ones as null / "" / []
    form = {"report_id": None, "report_name": "", "sql": "  ", "recipients": [], "format": None}
    assert parse_request(form).mode == "scheduled"


def test_report_by_id_or_name_with_overrides():
    request = parse_request({"report_id": 7, "format": "xlsx", "recipients": ["a@example.com", "a@example.com"]})
    assert (request.mode, request.report_id, request.format, request.recipients) == (
        "report",
        7,
        "xlsx",
        ("a@example.com",),
    )
    assert parse_request({"report_name": "daily sales"}).report_name == "daily sales"


def test_inline_sql_request():
    request = parse_request(
        {"sql": "SELECT 1;  ", "destination": "s3://aws_x@bucket/some/prefix/", "name": "q1", "parameters": {"a": 1}}
    )
    assert request.mode == "inline"
    assert request.sql == "SELECT 1"
    assert request.destination == Destination("s3://bucket/some/prefix", "aws_x")
    definition = request.inline_definition()
    assert (definition.name, definition.format, definition.parameters) == ("q1", "csv", {"a": 1})


@pytest.mark.parametrize(
    ("conf", "field", "message"),
    [
        ({"report": 7}, "report", "unknown field"),
        ({"report_id": 0}, "report_id", "positive integer"),
        ({"report_id": True}, "report_id", "positive integer"),
        ({"report_id": 1, "report_name": "x"}, "report_name", "not both"),
        ({"report_id": 1, "sql": "SELECT 1"}, "sql", "leave it empty"),
        ({"sql": "SELECT 1", "format": "docx"}, "format", "'docx' is not a report format"),
        ({"sql": "SELECT 1", "recipients": ["not-an-address"]}, "recipients", "not an email address"),
        ({"sql": "SELECT 1", "destination": "https://example.com/x"}, "destination", "not an object storage URL"),
        ({"sql": "SELECT 1", "destination": "file://relative/dir"}, "destination", "absolute path"),
        ({"sql": "SELECT 1", "destination": "nosuchfs://bucket/x"}, "destination", "no object storage filesystem"),
        ({"sql": "SELECT 1", "parameters": [1, 2]}, "parameters", "JSON object"),
        ({"sql": "SELECT 1", "parameters": {"bad name": 1}}, "parameters", "not an identifier"),
        ({"format": "csv"}, "format", "needs report_id, report_name or sql"),
    ],
)
def test_invalid_requests_name_the_field(conf, field, message):
    with pytest.raises(InvalidReportError, match=message) as raised:
        parse_request(conf)
    assert raised.value.field == field
    assert f"field {field!r}" in str(raised.value)


def test_destinations_accept_urls_and_objects_under_the_allowed_roots():
    assert parse_destination("file:///srv/reports/") == Destination("file:///srv/reports")
    assert parse_destination("file:///srv/reports/finance") == Destination("file:///srv/reports/finance")
    assert parse_destination({"url": "s3://b/p", "conn_id": "aws_reports"}) == Destination("s3://b/p", "aws_reports")
    assert parse_destination("s3://b/p/q3") == Destination("s3://b/p/q3", "aws_reports")  # the root's connection
    assert parse_destination("exports") == Destination("s3://bucket/some", "aws_x")  # a root by name
    assert parse_destination("exports/q3/") == Destination("s3://bucket/some/q3", "aws_x")
    with pytest.raises(InvalidReportError, match="names no bucket"):
        parse_destination("s3:///prefix")


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("file:///opt/dags", "is not under an allowed destination; allowed: exports (s3://bucket/some, connection"),
        ("file:///srv/reports-other/x", "is not under an allowed destination"),
        ("file:///srv/reports/../../etc", "may not have empty, '.' or '..' segments"),
        ("file:///srv/reports//x", "may not have empty, '.' or '..' segments"),
        ("s3://airflow_api@bucket/some", "connection 'airflow_api' is not allowed there"),
        ({"url": "s3://b/p", "conn_id": "aws_x"}, "connection 'aws_x' is not allowed there"),
        ("s3://other-bucket/some", "is not under an allowed destination"),
        ("exportsx", "is not an allowed destination"),
        ("file:///srv/reports/%2e%2e/x", "segments"),
    ],
)
def test_destinations_outside_the_allow_list_name_the_allowed_choices(destination, message):
    with pytest.raises(InvalidReportError, match=re.escape(message)) as raised:
        parse_request({"sql": "SELECT 1", "destination": destination})
    assert raised.value.field == "destination"


def test_without_an_allow_list_no_destination_is_allowed(monkeypatch):
    monkeypatch.delenv("REPORTS_ALLOWED_DESTINATIONS")
    with pytest.raises(
        InvalidReportError, match="no destination is allowed .an operator lists them in REPORTS_ALLOWED"
    ):
        parse_request({"sql": "SELECT 1", "destination": "file:///tmp/x"})


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("not json", "is not JSON"),
        ('{"url": "s3://b"}', "expected a JSON list"),
        ('[{"url": "s3://conn@b/p"}]', "is not a root"),
        ('[{"url": "file:///a/../b"}]', "'..' path segments"),
        ('[{"name": "x", "url": "s3://b"}, {"name": "x", "url": "s3://c"}]', "names must be unique"),
    ],
)
def test_a_bad_allow_list_names_the_setting(setting, message):
    from include.reports.destinations import parse_allowed

    with pytest.raises(ValueError, match=f"REPORTS_ALLOWED_DESTINATIONS.*{re.escape(message)}"):
        parse_allowed(setting)


def test_too_many_recipients_are_refused_naming_the_maximum():
    from include.settings import MAX_RECIPIENTS

    fits = [f"r{i}@example.com" for i in range(MAX_RECIPIENTS)]
    assert len(parse_request({"sql": "SELECT 1", "recipients": fits}).recipients) == MAX_RECIPIENTS
    with pytest.raises(InvalidReportError, match=f"{MAX_RECIPIENTS + 1} recipients; a report is sent to at most"):
        parse_request({"sql": "SELECT 1", "recipients": [*fits, "one-more@example.com"]})


# --------------------------------------------------------------------------- definitions


def _definition(**changes) -> ReportDefinition:
    base = {"name": "r", "sql": "SELECT 1", "schedule": "0 6 * * *", "timezone": "Europe/Berlin"}
    return ReportDefinition(**{**base, **changes})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"schedule": "61 * * * *"}, "schedule"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"format": "docx"}, "format"),
        ({"sql": " ; "}, "sql"),
        ({"recipients": ("ok@example.com", "broken")}, "recipients"),
        ({"retention_days": 0}, "retention_days"),
    ],
)
def test_invalid_definitions_name_the_report_and_field(changes, field):
    with pytest.raises(InvalidReportError) as raised:
        validate_definition(_definition(**changes))
    assert raised.value.field == field and raised.value.report == "r"
    assert str(raised.value).startswith("report 'r': field")


def test_valid_definition_is_normalised():
    definition = validate_definition(_definition(sql="SELECT 1;\n", recipients=("a@example.com", "a@example.com")))
    assert definition.sql == "SELECT 1" and definition.recipients == ("a@example.com",)


def test_safe_names():
    assert safe_name("Daily sales / EU (v2)") == "Daily_sales_EU_v2"
    assert safe_name("../..") == "report"


# --------------------------------------------------------------------------- schedule


def test_a_report_that_missed_several_slots_is_due_once_for_the_latest():
    now = _utc(2026, 11, 29, 15, 5)
    assert due_slot("0 * * * *", "UTC", anchor=_utc(2026, 11, 29, 11), now=now) == _utc(2026, 11, 29, 15)
    # once planned, the same slot is not due again
    assert due_slot("0 * * * *", "UTC", anchor=_utc(2026, 11, 29, 15), now=now) is None


def test_a_new_report_waits_for_its_first_slot_after_creation():
    created = _utc(2026, 11, 29, 10, 7)
    assert due_slot("0 6 * * *", "UTC", anchor=created, now=_utc(2026, 11, 29, 23)) is None
    assert due_slot("0 6 * * *", "UTC", anchor=created, now=_utc(2026, 11, 30, 6)) == _utc(2026, 11, 30, 6)


def test_slots_follow_the_report_time_zone_across_daylight_saving():
    # 06:00 in Berlin is 05:00 UTC in winter and 04:00 UTC in summer
    assert latest_slot("0 6 * * *", "Europe/Berlin", _utc(2026, 1, 15, 12)) == _utc(2026, 1, 15, 5)
    assert latest_slot("0 6 * * *", "Europe/Berlin", _utc(2026, 7, 15, 12)) == _utc(2026, 7, 15, 4)
    assert latest_slot("@daily", "UTC", _utc(2026, 7, 15, 0)) == _utc(2026, 7, 15)


# --------------------------------------------------------------------------- cells and email


def test_xlsx_cells_keep_types_excel_can_hold():
    from include.reports.xlsx import XLSX_MAX_CHARS, cell, header_names

    assert cell(Decimal("1.50")) == 1.5
    assert cell(Decimal("NaN")) == "NaN"
    assert cell(2**60) == str(2**60)
    assert cell({"a": [1]}) == '{"a": [1]}'
    assert cell(timedelta(hours=1)) == "1:00:00"
    assert cell(date(2026, 1, 2)) == date(2026, 1, 2)
    assert cell(datetime(2026, 1, 2, 3, tzinfo=UTC)) == datetime(2026, 1, 2, 3)
    assert cell(None) is None and cell(True) is True
    assert len(cell("x" * 40_000)) == XLSX_MAX_CHARS
    assert header_names(("a", "?column?", "?column?", "a", "a (2)")) == [
        "a",
        "?column?",
        "?column? (2)",
        "a (2)",
        "a (2) (2)",
    ]


def test_email_body_links_when_not_attached():
    from include.reports.delivery import ReportEmail

    email = ReportEmail(
        run_id=3,
        delivery_id=9,
        report_name="big <one>",
        slot_text="2026-11-29 06:00 UTC",
        recipients=("a@example.com",),
        subject="s",
        file_name="big.csv",
        rows=1234567,
        bytes=50 * 1024 * 1024,
        attachment=None,
        link="https://s3.example/big.csv?sig=1&x=2",
        link_expiry_text="2026-12-06 06:00 UTC",
    )
    body = email.html_body()
    assert "big &lt;one&gt;" in body and "1,234,567 rows, 50.0 MB" in body
    assert 'href="https://s3.example/big.csv?sig=1&amp;x=2"' in body and "2026-12-06 06:00 UTC" in body
    assert email.message_id("example.com") == "<report-run-3.delivery-9@example.com>"
