"""Log cleanup: rows older than their table's retention deleted in small batches.

Each batch is its own short transaction (with a lock timeout), so the cleanup never holds locks for
long or blocks writers; a run stops after ``max_batches`` per table and the next run continues. The
tables are a fixed list here: configuration only sets their retention, so it can never point the
cleanup at an arbitrary table. An unknown table name in the configuration is reported (log row and
task failure naming it) while the other tables are cleaned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from include.analytics import refresh_log
from include.analytics.config import LogCleanupSettings
from include.sql import load_sql
from observability import metrics

log = logging.getLogger(__name__)

JOB = "log_cleanup"


@dataclass(frozen=True)
class LogTable:
    name: str
    timestamp_column: str
    id_column: str = "id"


#: The log-like tables of the analytics jobs and the column their age is measured by.
LOG_TABLES: Mapping[str, LogTable] = {
    table.name: table
    for table in (
        LogTable("analytics_refresh_log", "started_at"),
        LogTable("analytics_query_statistics", "window_end"),
    )
}


@dataclass(frozen=True)
class TableCleanup:
    table: str
    status: str  # success | failed
    retention_days: int | None
    deleted: int = 0
    batches: int = 0
    complete: bool = True
    error: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class LogCleanupError(RuntimeError):
    """Some tables could not be cleaned (each is named; the others were cleaned).

    ``retryable`` is false when every failure is a configuration mistake (an unknown table), which a
    retry would only repeat.
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def clean_table(
    hook: Any, table: LogTable, retention_days: int, settings: LogCleanupSettings, *, dag_run_id: str | None
) -> TableCleanup:
    """Delete ``table``'s rows older than ``retention_days`` in batches; record one log row."""
    from psycopg import sql

    statement = sql.SQL(load_sql("log_cleanup/delete_batch.sql")).format(
        table=sql.Identifier(table.name),
        id=sql.Identifier(table.id_column),
        timestamp=sql.Identifier(table.timestamp_column),
    )
    params = {"retention_days": retention_days, "batch_size": settings.batch_size}
    started = time.perf_counter()
    deleted = batches = 0
    complete = False
    error: str | None = None
    try:
        while batches < settings.max_batches:
            with hook.transaction(
                statement_timeout=settings.statement_timeout_seconds,
                lock_timeout=settings.lock_timeout_seconds,
            ) as conn:
                count = conn.execute(statement, params).rowcount
            batches += 1
            deleted += count
            if count < settings.batch_size:
                complete = True
                break
    except Exception as error_:
        from hooks.circuit_breaker import CircuitOpenError

        if isinstance(error_, CircuitOpenError):
            raise
        error = f"{type(error_).__name__}: {str(error_).strip()}"
    outcome = TableCleanup(
        table=table.name,
        status="failed" if error else "success",
        retention_days=retention_days,
        deleted=deleted,
        batches=batches,
        complete=complete,
        error=error,
        seconds=round(time.perf_counter() - started, 3),
    )
    _record(hook, outcome, dag_run_id)
    if deleted:
        metrics.incr("log_cleanup.deleted", deleted, table=table.name)
    return outcome


def clean_logs(hook: Any, settings: LogCleanupSettings, *, dag_run_id: str | None = None) -> list[TableCleanup]:
    """Clean every configured log table; raise :class:`LogCleanupError` at the end naming failures."""
    results: list[TableCleanup] = []
    for name, days in sorted(settings.retention_days.items()):
        table = LOG_TABLES.get(name)
        if table is None:
            outcome = TableCleanup(
                table=name,
                status="failed",
                retention_days=days,
                complete=False,
                error=(
                    f"log_cleanup.retention_days names unknown table {name!r}; "
                    f"tables that can be cleaned: {sorted(LOG_TABLES)}"
                ),
            )
            _record(hook, outcome, dag_run_id)
        else:
            outcome = clean_table(hook, table, days, settings, dag_run_id=dag_run_id)
        results.append(outcome)
        if outcome.status == "success":
            log.info(
                "%s: deleted %d rows older than %d days in %d batches%s",
                outcome.table,
                outcome.deleted,
                outcome.retention_days,
                outcome.batches,
                "" if outcome.complete else " (batch limit reached; the next run continues)",
            )
        else:
            log.error("%s: cleanup failed: %s", outcome.table, outcome.error)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise LogCleanupError(
            "log cleanup failed for " + "; ".join(f"{r.table}: {r.error}" for r in failed),
            retryable=any(r.table in LOG_TABLES for r in failed),
        )
    return results


def _record(hook: Any, outcome: TableCleanup, dag_run_id: str | None) -> None:
    with hook.transaction() as conn:
        refresh_log.record(
            conn,
            job=JOB,
            target=outcome.table,
            status=outcome.status,
            dag_run_id=dag_run_id,
            details={k: v for k, v in outcome.as_dict().items() if k not in ("status", "error", "table")},
            error=outcome.error,
            duration_ms=outcome.seconds * 1000,
        )
