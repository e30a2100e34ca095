"""Helpers for the alerts tests: clean tables, create alerts, evaluate, read what was recorded."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from include.alerts.definitions import validate_single
from include.alerts.evaluate import BatchSummary, EvaluationContext, evaluate_alerts
from include.alerts.settings import AlertSettings
from include.alerts.sync import save_definition

_runs = itertools.count(1)
TEST_URL = "http://airflow.test/dags/alerts/runs/test/tasks/evaluate_batch"
#: Settings for tests: no minimum interval, immediate retries.
TEST_SETTINGS = AlertSettings(minimum_interval=0, retry_base=0, retry_max=0, max_attempts=5)


def clean_alert_tables(db) -> None:
    db.execute(
        "TRUNCATE analytics_alerts, analytics_alert_events, analytics_alert_notifications RESTART IDENTITY CASCADE"
    )


def make_alert(db, name: str, sql: str, condition: str, threshold: float | None = None, **fields: Any) -> int:
    """Validate and insert an alert (as the table source); return its id."""
    definition = validate_single(
        {"name": name, "sql": sql, "condition": condition, "threshold": threshold, **fields},
        "test",
        TEST_SETTINGS,
    )
    return save_definition(db, definition, "table", None)


def evaluate(ids: list[int], *, now: datetime | None = None, run_id: str | None = None, **kw: Any) -> BatchSummary:
    context = EvaluationContext(run_id=run_id or f"test-run-{next(_runs)}", url=TEST_URL, now=now, **kw)
    return evaluate_alerts(ids, context)


def alert_row(db, alert_id: int) -> dict[str, Any]:
    from psycopg.rows import dict_row

    with db.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM analytics_alerts WHERE id = %s", [alert_id]).fetchone()


def states(db) -> dict[str, str]:
    return dict(db.execute("SELECT name, state FROM analytics_alerts ORDER BY name").fetchall())


def events(db, alert_id: int) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    with db.cursor(row_factory=dict_row) as cur:
        query = "SELECT * FROM analytics_alert_events WHERE alert_id = %s ORDER BY id"
        return cur.execute(query, [alert_id]).fetchall()


def notifications(db, alert_id: int | None = None) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    where, params = ("WHERE alert_id = %s", [alert_id]) if alert_id is not None else ("", [])
    with db.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"SELECT * FROM analytics_alert_notifications {where} ORDER BY id", params).fetchall()


def later(seconds: float) -> datetime:
    from datetime import timedelta

    return datetime.now(UTC) + timedelta(seconds=seconds)
