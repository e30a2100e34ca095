"""``analytics_refresh_log``: one row per job run, or per item (view, table) of a job run.

``job`` is the analytics job (``catalog``, ``materialized_views``, ``query_statistics``,
``log_cleanup``, ``analytics_api``), ``target`` the item (``schema.view``, a table) or NULL for the
job as a whole, ``status`` running / success / failed / skipped, ``details`` what the job reports
(counts, refresh mode, reason), ``error`` why it failed or was skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from include.sql import load_sql

if TYPE_CHECKING:
    import psycopg

STATUSES = ("running", "success", "failed", "skipped")


def _jsonb(details: Mapping[str, Any] | None):
    from psycopg.types.json import Jsonb

    return Jsonb(dict(details or {}))


def start(
    conn: psycopg.Connection,
    *,
    job: str,
    target: str | None,
    dag_run_id: str | None,
    details: Mapping[str, Any] | None = None,
) -> int:
    """Insert a ``running`` row and return its id."""
    row = conn.execute(
        load_sql("refresh_log/start.sql"),
        {"job": job, "target": target, "dag_run_id": dag_run_id, "details": _jsonb(details)},
    ).fetchone()
    return int(row[0])


def finish(
    conn: psycopg.Connection,
    entry_id: int,
    *,
    status: str,
    details: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Close a row opened by :func:`start` with its final status, duration and details."""
    if status not in STATUSES[1:]:
        raise ValueError(f"final status must be one of {STATUSES[1:]}, got {status!r}")
    conn.execute(
        load_sql("refresh_log/finish.sql"),
        {"id": entry_id, "status": status, "details": _jsonb(details), "error": _clip(error)},
    )


def record(
    conn: psycopg.Connection,
    *,
    job: str,
    target: str | None,
    status: str,
    dag_run_id: str | None,
    details: Mapping[str, Any] | None = None,
    error: str | None = None,
    duration_ms: float = 0.0,
) -> int:
    """Insert a finished row at once: a job that ran in one go (``duration_ms``), or a skip."""
    row = conn.execute(
        load_sql("refresh_log/insert_finished.sql"),
        {
            "duration_ms": float(duration_ms),
            "job": job,
            "target": target,
            "status": status,
            "dag_run_id": dag_run_id,
            "details": _jsonb(details),
            "error": _clip(error),
        },
    ).fetchone()
    return int(row[0])


def run_items(conn: psycopg.Connection, *, dag_run_id: str, job: str) -> dict[str, dict[str, Any]]:
    """The latest row per target of ``job`` in one DAG run: ``{target: {status, error, details, ...}}``."""
    cur = conn.execute(load_sql("refresh_log/select_run_items.sql"), {"dag_run_id": dag_run_id, "job": job})
    names = [c.name for c in cur.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def _clip(text: str | None, limit: int = 4000) -> str | None:
    return text if text is None or len(text) <= limit else text[: limit - 1] + "…"
