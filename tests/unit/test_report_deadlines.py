"""Report delivery deadlines: parsing and validation naming the field, the owner's channels."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from include.reports.deadlines import owner_channels, parse_deadline
from include.reports.definitions import InvalidReportError, definition_from_row


def _row(**changes):
    row = {"id": 1, "name": "daily", "sql": "SELECT 1", "schedule": "0 6 * * *", "owner": "owner@example.com"}
    return {**row, **changes}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("45m", 2700), ("2h", 7200), ("1h30m", 5400), ("1h 30m", 5400), ("90", 5400), (15, 900), ("10min", 600)],
)
def test_deadlines_are_minutes_or_hours_after_the_slot(value, seconds):
    assert parse_deadline(value, max_days=7) == seconds
    assert definition_from_row(_row(deadline=value)).deadline_seconds == seconds


def test_no_deadline():
    assert definition_from_row(_row()).deadline_seconds is None
    assert definition_from_row(_row(deadline="  ")).deadline_seconds is None


@pytest.mark.parametrize("value", ["45s", "0m", "soon", "-5", 0, True, "8000h", [45], "h"])
def test_invalid_deadlines_name_the_field(value):
    with pytest.raises(InvalidReportError) as raised:
        definition_from_row(_row(deadline=value))
    assert raised.value.field == "deadline" and raised.value.report == "daily"
    assert "such as 45m, 2h or 1h30m" in str(raised.value)


def test_a_deadline_needs_a_schedule_and_an_owner_it_can_tell():
    with pytest.raises(InvalidReportError) as raised:
        definition_from_row(_row(deadline="45m", schedule=None))
    assert raised.value.field == "deadline" and "needs a schedule" in str(raised.value)
    for owner in (None, "sales team", "slack:general"):
        with pytest.raises(InvalidReportError) as raised:
            definition_from_row(_row(deadline="45m", owner=owner))
        assert raised.value.field == "owner" and "email address or slack:#channel" in str(raised.value)
    assert definition_from_row(_row(deadline="45m", owner="slack:#sales-ops")).deadline_seconds == 2700
    assert definition_from_row(_row(owner="sales team")).owner == "sales team"  # no deadline: any owner


def test_the_owner_is_reached_as_an_alert_s_owner_is():
    assert owner_channels("a@example.com") == [
        (-1, {"type": "email", "connection": "smtp_default", "to": ["a@example.com"]})
    ]
    assert owner_channels("slack:#sales-ops") == [(-2, {"type": "slack", "channel": "#sales-ops"})]
    assert owner_channels("sales") == []


def test_the_notice_says_what_was_missed():
    from include.reports.deadlines import _payload

    run = {
        "id": 7, "report_name": "daily", "audience": "emea", "status": "generated", "error": "SMTP 451 busy",
        "slot": datetime(2026, 5, 4, 6, 0, tzinfo=UTC), "deadline_at": datetime(2026, 5, 4, 6, 45, tzinfo=UTC),
        "finished_at": None,
    }  # fmt: skip
    email = _payload("email", run)
    assert email["subject"] == "Report 'daily' (audience emea) missed its delivery deadline (2026-05-04 06:45 UTC)"
    assert "45 minutes after its slot; it is generated (last error: SMTP 451 busy)" in email["text"]
    assert _payload("slack", run)["text"].startswith(":alarm_clock: Report 'daily'")
