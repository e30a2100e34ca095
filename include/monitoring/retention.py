"""Retention cleanup of the monitoring tables: rows older than each table's retention are deleted.

Deletes run in batches, each in its own short transaction, so a large backlog never holds long
locks or one huge transaction. Every table is cleaned even when another fails.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from include.sql import load_sql
from observability import metrics

log = logging.getLogger(__name__)

#: Table -> the timestamp column its retention is measured on.
RETENTION_COLUMNS: Mapping[str, str] = {
    "health_checks": "checked_at",
    "worker_metrics": "collected_at",
    "task_statistics": "computed_at",
}
DEFAULT_BATCH_SIZE = 5000


def delete_expired(hook, table: str, days: int, *, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Delete rows of ``table`` older than ``days`` days; return how many."""
    from psycopg import sql

    if table not in RETENTION_COLUMNS:
        raise ValueError(f"no retention rule for table {table!r}; expected one of {sorted(RETENTION_COLUMNS)}")
    if int(days) < 1:
        raise ValueError(f"retention of {table} must be at least 1 day, got {days!r}")
    statement = sql.SQL(load_sql("monitoring/delete_expired_batch.sql")).format(
        table=sql.Identifier(table), column=sql.Identifier(RETENTION_COLUMNS[table])
    )
    deleted = 0
    while True:
        with hook.transaction(statement_timeout=60, lock_timeout=10) as conn:
            count = conn.execute(statement, {"days": int(days), "batch_size": batch_size}).rowcount
        deleted += count
        if count < batch_size:
            break
    metrics.incr("retention.deleted", deleted, table=table)
    log.info("retention: deleted %d rows older than %d days from %s", deleted, days, table)
    return deleted


def cleanup(retention_days: Mapping[str, int], *, batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, int]:
    """Apply ``retention_days`` (table -> days); fail at the end naming every table that failed."""
    from hooks.circuit_breaker import CircuitOpenError
    from hooks.warehouse import WarehouseHook

    hook = WarehouseHook()
    deleted: dict[str, int] = {}
    errors: list[str] = []
    for table, days in retention_days.items():
        try:
            deleted[table] = delete_expired(hook, table, days, batch_size=batch_size)
        except CircuitOpenError:  # the warehouse is down: reschedule the task, do not fail it
            raise
        except Exception as error:
            log.error("retention cleanup of %s failed: %s", table, error)
            errors.append(f"{table}: {type(error).__name__}: {error}")
    if errors:
        raise RuntimeError("retention cleanup failed for " + "; ".join(errors))
    return deleted
