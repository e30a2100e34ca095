"""Catalog refresh: the metadata of every relation in scope, upserted into ``analytics_catalog``.

One transaction of set-based statements, whatever the number of relations (no round trip per
table): read ``pg_catalog`` into a temporary snapshot, count the few tables that need an exact
count inside the server, fold partitions into their partitioned table, upsert (rewriting only rows
that changed), mark objects that disappeared as dropped, and write the run's ``analytics_refresh_log``
row. A concurrent refresh waits for the first (advisory lock) instead of racing it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from include.analytics import refresh_log
from include.analytics.config import CatalogSettings
from include.lineage.openlineage import report_relations
from include.sql import load_sql
from observability import metrics

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

JOB = "catalog"
#: Rows written by one refresh after which analytics_catalog is analyzed at once.
ANALYZE_AFTER_ROWS = 500
#: At most this many catalogued relations are named as the refresh's lineage inputs (Airflow's
#: hook lineage collector keeps 100 assets per task unless ``[lineage] max_assets_per_collector`` says more).
LINEAGE_MAX_INPUTS = 100
#: What a catalog refresh writes.
CATALOG_TABLE = "public.analytics_catalog"


@dataclass(frozen=True)
class CatalogRefreshResult:
    total: int
    added: int
    changed: int
    dropped: int
    rows_written: int
    exact_counts: int
    #: tables that needed an exact count beyond ``exact_count_max_tables`` (left for later runs)
    exact_counts_deferred: int
    duration_ms: float
    dropped_objects: list[str] = field(default_factory=list)
    #: relations catalogued (at most LINEAGE_MAX_INPUTS): the refresh's lineage inputs, not in as_dict
    catalogued: tuple[str, ...] = field(default=(), repr=False)

    @property
    def unchanged(self) -> int:
        return self.total - self.added - self.changed

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("catalogued")
        return {**data, "unchanged": self.unchanged}


def snapshot_parameters(settings: CatalogSettings, exact_counts: Iterable[str] = ()) -> dict[str, Any]:
    """Bound parameters of the snapshot and drop-marking statements."""
    return {
        "schemas": list(settings.schemas),
        "exclude_schemas": list(settings.exclude_schemas),
        "exact_count_max_bytes": settings.exact_count_max_bytes,
        "exact_counts": sorted({*settings.exact_counts, *exact_counts}),
        "exact_count_max_tables": settings.exact_count_max_tables,
    }


def refresh_in_transaction(
    conn: psycopg.Connection,
    settings: CatalogSettings,
    *,
    exact_counts: Iterable[str] = (),
    dag_run_id: str | None = None,
) -> CatalogRefreshResult:
    """Refresh the catalog on ``conn``, inside the caller's transaction (committed by the caller)."""
    started = time.perf_counter()
    params = snapshot_parameters(settings, exact_counts)
    conn.execute(load_sql("catalog/lock.sql"))
    conn.execute(load_sql("catalog/create_snapshot.sql"), params)
    counted = conn.execute(load_sql("catalog/exact_counts.sql"), params).rowcount
    deferred = conn.execute(load_sql("catalog/count_deferred.sql")).fetchone()[0]
    conn.execute(load_sql("catalog/roll_up_partitions.sql"))
    conn.execute(load_sql("catalog/delete_partitions.sql"))
    conn.execute(load_sql("catalog/analyze_snapshot.sql"))
    total, added, changed = conn.execute(load_sql("catalog/count_changes.sql")).fetchone()
    catalogued = conn.execute(
        load_sql("catalog/select_snapshot_relations.sql"), {"max_relations": LINEAGE_MAX_INPUTS}
    ).fetchall()
    written = conn.execute(load_sql("catalog/merge.sql")).rowcount
    if written >= ANALYZE_AFTER_ROWS:
        conn.execute(load_sql("catalog/analyze_catalog.sql"))
    dropped = [row[0] for row in conn.execute(load_sql("catalog/mark_dropped.sql"), params)]
    result = CatalogRefreshResult(
        total=total,
        added=added,
        changed=changed,
        dropped=len(dropped),
        rows_written=written,
        exact_counts=max(counted, 0),
        exact_counts_deferred=deferred,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
        dropped_objects=sorted(dropped),
        catalogued=tuple(row[0] for row in catalogued),
    )
    details = {
        **result.as_dict(),
        "dropped_objects": result.dropped_objects[:100],
        "schemas": params["schemas"] or "all non-system schemas",
        "exclude_schemas": params["exclude_schemas"],
        "exact_counts_requested": params["exact_counts"],
    }
    refresh_log.record(
        conn,
        job=JOB,
        target=None,
        status="success",
        dag_run_id=dag_run_id,
        details=details,
        duration_ms=(time.perf_counter() - started) * 1000,
    )
    return result


def refresh_catalog(
    hook: Any,
    settings: CatalogSettings,
    *,
    exact_counts: Iterable[str] = (),
    dag_run_id: str | None = None,
) -> CatalogRefreshResult:
    """Refresh the catalog through the warehouse hook; a failure is logged in the refresh log, then raised."""
    started = time.perf_counter()
    try:
        with hook.transaction(
            statement_timeout=settings.statement_timeout_seconds,
            lock_timeout=settings.lock_timeout_seconds,
        ) as conn:
            result = refresh_in_transaction(conn, settings, exact_counts=exact_counts, dag_run_id=dag_run_id)
    except Exception as error:
        _record_failure(hook, error, dag_run_id, time.perf_counter() - started)
        raise
    log.info(
        "catalog refreshed in %.0f ms: %d objects (%d added, %d changed, %d dropped, %d unchanged), "
        "%d rows written, %d exact counts",
        result.duration_ms,
        result.total,
        result.added,
        result.changed,
        result.dropped,
        result.unchanged,
        result.rows_written,
        result.exact_counts,
    )
    if result.dropped_objects:
        log.info("marked dropped: %s", ", ".join(result.dropped_objects))
    report_relations(hook, read=result.catalogued, written=[CATALOG_TABLE])
    metrics.gauge("catalog.objects", result.total)
    metrics.timing("catalog.duration", result.duration_ms)
    for change in ("added", "changed", "dropped"):
        if getattr(result, change):
            metrics.incr("catalog.changes", getattr(result, change), change=change)
    return result


def _record_failure(hook: Any, error: BaseException, dag_run_id: str | None, seconds: float) -> None:
    from hooks.circuit_breaker import CircuitOpenError

    if isinstance(error, CircuitOpenError):
        return  # the database is unreachable: nothing can be recorded, the task is rescheduled
    try:
        with hook.transaction() as conn:
            refresh_log.record(
                conn,
                job=JOB,
                target=None,
                status="failed",
                dag_run_id=dag_run_id,
                error=f"{type(error).__name__}: {error}",
                duration_ms=seconds * 1000,
            )
    except Exception:  # the original error matters more than the log row
        log.warning("could not record the failed catalog refresh", exc_info=True)
    metrics.incr("catalog.failures")
