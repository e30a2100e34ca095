"""Pure logic of the analytics jobs: view order, refresh summary, extension checks, notification body."""

from __future__ import annotations

import graphlib
from datetime import UTC, datetime

import pytest

from include.analytics.mviews import PlannedView, order_views, summarize
from include.analytics.notify import build_payload
from include.analytics.query_stats import missing_reason


def test_views_come_after_what_they_read_and_ties_are_ordered_by_name():
    reads = {
        "s.report": ["s.totals", "s.daily"],
        "s.totals": [],
        "s.daily": ["s.raw"],
        "s.raw": [],
        "s.alone": ["s.not_in_scope"],
    }
    assert order_views(reads) == [
        ("s.alone", 0),
        ("s.raw", 0),
        ("s.totals", 0),
        ("s.daily", 1),
        ("s.report", 2),
    ]


def test_a_cycle_cannot_be_ordered():
    with pytest.raises(graphlib.CycleError):
        order_views({"a": ["b"], "b": ["a"]})


def test_the_summary_names_failed_views_and_those_left_out_because_of_them():
    planned = [PlannedView("s", name) for name in ("ok", "bad", "child", "busy", "lost", "stuck")]
    items = {
        "s.ok": {"status": "success", "details": {"mode": "plain"}},
        "s.bad": {"status": "failed", "error": "division by zero", "details": {}},
        "s.child": {"status": "skipped", "error": "it reads s.bad", "details": {"upstream_failed": True}},
        "s.busy": {"status": "skipped", "error": "another refresh is running", "details": {}},
        "s.stuck": {"status": "running", "error": None, "details": {}},
    }
    failed, not_refreshed = summarize(planned, items)
    assert failed == ["s.bad: division by zero", "s.stuck: did not finish (still marked running)"]
    assert not_refreshed == ["s.child: it reads s.bad", "s.lost: never ran"]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ((None, None, True, "", 150000, "wh"), "not installed in database 'wh'"),
        ((None, None, False, "", 150000, "wh"), "not available on this server"),
        (("public", "1.8", True, "pg_stat_statements", 150000, "wh"), "1.8 is too old"),
        (("public", "1.10", True, "pg_stat_statements", 130000, "wh"), "PostgreSQL 13 is too old"),
        (("public", "1.10", True, "pg_stat_statements", 150000, "wh"), None),
    ],
)
def test_why_query_statistics_cannot_run(row, expected):
    reason = missing_reason(row)
    assert reason is None if expected is None else expected in reason


def test_the_notification_lists_what_was_refreshed_since_the_last_one():
    since = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    until = datetime(2026, 5, 4, 13, 1, tzinfo=UTC)
    rows = [
        ("materialized_views", "s.b", datetime(2026, 5, 4, 12, 0, 5, tzinfo=UTC), {"mode": "plain"}, since),
        ("catalog", None, datetime(2026, 5, 4, 12, 0, 9, tzinfo=UTC), {"total": 9, "added": 1, "dropped": 0}, since),
        ("materialized_views", "s.a", datetime(2026, 5, 4, 13, 0, 5, tzinfo=UTC), {"mode": "plain"}, since),
        (
            "catalog",
            None,
            datetime(2026, 5, 4, 13, 0, 9, tzinfo=UTC),
            {"total": 9, "changed": 2, "dropped": 1, "dropped_objects": ["s.old"]},
            since,
        ),
        ("materialized_views", "s.b", datetime(2026, 5, 4, 13, 0, 6, tzinfo=UTC), {"mode": "plain"}, since),
    ]
    payload = build_payload(rows, until=until, dag_run_id="run-1")
    assert payload["materialized_views"] == ["s.a", "s.b"]
    assert payload["since"] == since.isoformat() and payload["until"] == until.isoformat()
    assert payload["catalog"] == {
        "refreshed_at": "2026-05-04T13:00:09+00:00",
        "refreshes": 2,
        "objects": 9,
        "added": 1,
        "changed": 2,
        "dropped": 1,
        "dropped_objects": ["s.old"],
    }
