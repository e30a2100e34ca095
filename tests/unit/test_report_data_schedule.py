"""Data-driven report schedules, pure logic: when a waiting slot goes, and what its note says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from include.reports.data_schedule import DEFAULT_DATA_WAIT_LIMIT_SECONDS, data_wait
from include.reports.definitions import InvalidReportError, ReportDefinition, validate_definition
from include.reports.delivery import ReportEmail
from include.reports.schedule import previous_slot

SLOT = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)
PREVIOUS = SLOT - timedelta(days=1)


def _wait(changed: dict[str, datetime], now: datetime, limit: int | None = 3600):
    return data_wait(
        slot=SLOT,
        previous_slot=PREVIOUS,
        reads_changed_at={k: v.isoformat() for k, v in changed.items()},
        limit_seconds=limit,
        now=now,
    )


def test_the_slot_goes_once_everything_it_reads_changed_since_the_previous_slot():
    fresh = {"marts.orders": SLOT - timedelta(hours=2), "marts.customers": SLOT + timedelta(minutes=5)}
    wait = _wait(fresh, now=SLOT + timedelta(minutes=6))
    assert wait.go and wait.note is None
    assert [c["relation"] for c in wait.triggered_by] == ["marts.customers", "marts.orders"]


def test_the_slot_waits_while_something_it_reads_is_stale():
    stale = {"marts.orders": SLOT - timedelta(hours=2), "marts.customers": PREVIOUS - timedelta(hours=1)}
    wait = _wait(stale, now=SLOT + timedelta(minutes=30))
    assert not wait.go
    assert wait.reason == "waiting for its data until 2026-05-04T07:00:00+00:00: marts.customers"


def test_at_its_data_wait_limit_the_slot_goes_with_a_note():
    stale = {"marts.orders": SLOT - timedelta(hours=2), "marts.customers": PREVIOUS - timedelta(hours=1)}
    wait = _wait(stale, now=SLOT + timedelta(hours=1))
    assert wait.go and wait.triggered_by == ()
    assert wait.note == (
        "Generated at its data wait limit (1 h after the 2026-05-04 06:00 UTC slot) without fresh data: "
        "marts.customers (not changed since 2026-05-03 06:00 UTC)."
    )


def test_a_report_that_never_saw_its_data_change_waits_for_the_default_limit():
    assert not _wait({}, now=SLOT + timedelta(hours=1), limit=None).go
    late = _wait({}, now=SLOT + timedelta(seconds=DEFAULT_DATA_WAIT_LIMIT_SECONDS), limit=None)
    assert late.go and "none of the relations it reads was seen to change" in late.note


def test_previous_slot_in_the_report_time_zone():
    assert previous_slot("0 6 * * *", "Europe/Berlin", datetime(2026, 5, 4, 4, 0, tzinfo=UTC)) == datetime(
        2026, 5, 3, 4, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"schedule": None, "wait_for_data": True}, "wait_for_data"),
        ({"schedule": "on_change", "wait_for_data": True}, "wait_for_data"),
        ({"schedule": "0 6 * * *", "wait_for_data": True, "data_wait_limit_seconds": 0}, "data_wait_limit_seconds"),
    ],
)
def test_bad_data_schedules_name_the_field(changes, field):
    with pytest.raises(InvalidReportError) as caught:
        validate_definition(ReportDefinition(name="r", sql="SELECT 1", **changes))
    assert caught.value.field == field


def test_on_change_is_a_schedule():
    assert validate_definition(ReportDefinition(name="r", sql="SELECT 1", schedule="on_change")).schedule == "on_change"


def test_the_note_is_at_the_top_of_the_email():
    email = ReportEmail(
        run_id=1, delivery_id=2, report_name="daily", slot_text="2026-05-04 06:00 UTC", recipients=("a@x.io",),
        subject="Report daily", file_name="daily.csv", rows=3, bytes=10, attachment="/tmp/daily.csv", link=None,
        note="Generated at its data wait limit without fresh data: marts.orders.",
    )  # fmt: skip
    assert email.html_body().startswith(
        "<p><b>Note:</b> Generated at its data wait limit without fresh data: marts.orders.</p>"
    )
