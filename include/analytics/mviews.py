"""Materialized-view refresh: dependency order, automatic CONCURRENTLY, per-view advisory lock.

:func:`plan_views` lists the views in scope in dependency order (a view that reads another, directly
or through plain views, comes after it) with the views each one waits for. :func:`refresh_view`
refreshes one view:

* ``REFRESH ... CONCURRENTLY`` when the view is populated and has a usable unique index (readers
  keep reading), a plain refresh otherwise;
* under a per-view ``pg_try_advisory_xact_lock``: when another refresh of the same view is running,
  this one is skipped (recorded with who holds the lock) instead of queueing behind it;
* with ``lock_timeout`` and ``statement_timeout``; then ``ANALYZE``;
* logged in ``analytics_refresh_log`` (job ``materialized_views``, target ``schema.view``) with
  its mode and duration. A failure is an outcome with the reason, not an exception, so the other
  views go on; only a lost database connection propagates (breaker, retry).
"""

from __future__ import annotations

import graphlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from include.analytics import refresh_log
from include.analytics.config import MaterializedViewSettings
from include.sql import load_sql
from observability import metrics

log = logging.getLogger(__name__)

JOB = "materialized_views"
LOCK_PREFIX = "analytics_platform.materialized_view:"

#: SQLSTATEs worth an Airflow retry of the view: lock timeout, deadlock, serialization failure.
#: Other errors (the view's query fails, a statement timeout) would fail the same way again.
RETRYABLE_SQLSTATES = {"55P03": "lock timeout", "40P01": "deadlock", "40001": "serialization failure"}


@dataclass(frozen=True)
class PlannedView:
    schema: str
    name: str
    #: the in-scope materialized views this one reads (``schema.view``), refreshed before it
    reads: tuple[str, ...] = ()
    #: 0 for views that read no other in-scope view, else 1 + the highest level among ``reads``
    level: int = 0
    #: positions in the plan of the views in ``reads`` (the map indexes of their refresh tasks)
    reads_indexes: tuple[int, ...] = ()
    #: every relation its query reads (``schema.name``), through plain views: its lineage inputs
    sources: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}"

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "key": self.key,
            "reads": list(self.reads),
            "reads_indexes": list(self.reads_indexes),
            "sources": list(self.sources),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlannedView:
        return cls(
            schema=data["schema"],
            name=data["name"],
            reads=tuple(data.get("reads") or ()),
            level=int(data.get("level") or 0),
            reads_indexes=tuple(data.get("reads_indexes") or ()),
            sources=tuple(data.get("sources") or ()),
        )


@dataclass(frozen=True)
class RefreshOutcome:
    view: str
    status: str  # success | failed | skipped
    mode: str | None = None  # concurrently | plain
    duration_ms: float = 0.0
    refresh_ms: float | None = None
    analyze_ms: float | None = None
    reason: str | None = None
    sqlstate: str | None = None
    retryable: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def order_views(reads: Mapping[str, Iterable[str]]) -> list[tuple[str, int]]:
    """Views in dependency order with their level; ties broken by name so the order is stable.

    ``reads`` maps each view to the views it reads (unknown names are ignored). A cycle cannot
    exist between materialized views; one in the input raises ``graphlib.CycleError``.
    """
    graph = {view: {r for r in sources if r in reads and r != view} for view, sources in reads.items()}
    sorter = graphlib.TopologicalSorter(graph)
    sorter.prepare()
    level: dict[str, int] = {}
    ordered: list[tuple[str, int]] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        for view in ready:
            level[view] = 1 + max((level[s] for s in graph[view]), default=-1)
            ordered.append((view, level[view]))
        sorter.done(*ready)
    return sorted(ordered, key=lambda item: (item[1], item[0]))


def plan_views(
    hook: Any, settings: MaterializedViewSettings, changed: Iterable[str] | None = None
) -> list[PlannedView]:
    """The materialized views in scope, in refresh order, each with the views it waits for.

    ``changed`` (``schema.name`` of relations that changed, e.g. dbt models): only the views that
    read one of them, directly or through views, and the views that read those; ``None``: all.
    """
    params = {"schemas": list(settings.schemas), "exclude_schemas": list(settings.exclude_schemas)}
    with hook.transaction(statement_timeout=60) as conn:
        rows = conn.execute(load_sql("mviews/select_views.sql"), params).fetchall()
    names = {f"{schema}.{name}": (schema, name) for schema, name, _, _ in rows}
    reads = {f"{schema}.{name}": tuple(sorted(views)) for schema, name, views, _ in rows}
    sources = {f"{schema}.{name}": tuple(sorted(found)) for schema, name, _, found in rows}
    if changed is not None:
        keep = affected_views(sources, reads, set(changed))
        reads = {view: tuple(r for r in read if r in keep) for view, read in reads.items() if view in keep}
    ordered = order_views(reads)
    position = {view: i for i, (view, _) in enumerate(ordered)}
    return [
        PlannedView(
            schema=names[view][0],
            name=names[view][1],
            reads=reads[view],
            level=lvl,
            reads_indexes=tuple(position[r] for r in reads[view]),
            sources=sources[view],
        )
        for view, lvl in ordered
    ]


def affected_views(
    sources: Mapping[str, Iterable[str]], reads: Mapping[str, Iterable[str]], changed: set[str]
) -> set[str]:
    """The views that read a ``changed`` relation (through plain views), and every view that reads one of those."""
    affected = {view for view, found in sources.items() if changed.intersection(found)}
    grew = True
    while grew:
        more = {view for view, read in reads.items() if view not in affected and affected.intersection(read)}
        affected |= more
        grew = bool(more)
    return affected


def lock_name(schema: str, name: str) -> str:
    return f"{LOCK_PREFIX}{schema}.{name}"


def refresh_view(
    hook: Any,
    schema: str,
    name: str,
    settings: MaterializedViewSettings,
    *,
    dag_run_id: str | None = None,
) -> RefreshOutcome:
    """Refresh one materialized view and record the outcome; see the module docstring."""
    from hooks.circuit_breaker import CircuitOpenError
    from hooks.warehouse import is_database_failure

    view = f"{schema}.{name}"
    with hook.transaction() as conn:
        entry = refresh_log.start(conn, job=JOB, target=view, dag_run_id=dag_run_id)
    started = time.perf_counter()
    try:
        outcome = _refresh(hook, schema, name, settings)
    except CircuitOpenError:
        raise  # the database is unreachable: the task is rescheduled, nothing can be recorded
    except Exception as error:
        sqlstate = getattr(error, "sqlstate", None)
        if is_database_failure(error):
            _finish(hook, entry, "failed", {"sqlstate": sqlstate}, f"{type(error).__name__}: {error}")
            raise
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        outcome = RefreshOutcome(
            view=view,
            status="failed",
            reason=reason,
            sqlstate=sqlstate,
            retryable=sqlstate in RETRYABLE_SQLSTATES,
        )
    outcome = _with_duration(outcome, (time.perf_counter() - started) * 1000)
    details = {
        key: value
        for key, value in {
            "mode": outcome.mode,
            "refresh_ms": outcome.refresh_ms,
            "analyze_ms": outcome.analyze_ms,
            "sqlstate": outcome.sqlstate,
            "retryable": outcome.retryable or None,
            **outcome.details,
        }.items()
        if value is not None
    }
    error_text = outcome.reason if outcome.status != "success" else None
    _finish(hook, entry, outcome.status, details, error_text)
    _log_outcome(outcome)
    return outcome


def _refresh(hook: Any, schema: str, name: str, settings: MaterializedViewSettings) -> RefreshOutcome:
    from psycopg import sql

    view = f"{schema}.{name}"
    identifier = sql.Identifier(schema, name)
    with hook.transaction(
        statement_timeout=settings.statement_timeout_seconds,
        lock_timeout=settings.lock_timeout_seconds,
    ) as conn:
        locked = conn.execute(load_sql("mviews/try_lock.sql"), {"lock_name": lock_name(schema, name)}).fetchone()[0]
        if not locked:
            holder = conn.execute(load_sql("mviews/lock_holder.sql"), {"lock_name": lock_name(schema, name)}).fetchone()
            who = f"pid {holder[0]} ({holder[1] or 'no application name'})" if holder else "another session"
            return RefreshOutcome(
                view=view,
                status="skipped",
                reason=f"another refresh of {view} is running ({who}); skipped instead of waiting",
                details={"lock_holder_pid": holder[0] if holder else None},
            )
        described = conn.execute(load_sql("mviews/describe_view.sql"), {"schema": schema, "name": name}).fetchone()
        if described is None:
            return RefreshOutcome(view=view, status="skipped", reason=f"{view} no longer exists")
        populated, unique_index = described
        concurrently = bool(populated and unique_index)
        mode = "concurrently" if concurrently else "plain"
        statement = load_sql("mviews/refresh_concurrently.sql" if concurrently else "mviews/refresh.sql")
        started = time.perf_counter()
        conn.execute(sql.SQL(statement).format(view=identifier))
        refresh_ms = (time.perf_counter() - started) * 1000
    why = (
        f"unique index {unique_index}"
        if concurrently
        else ("not populated yet" if not populated else "no unique index usable by CONCURRENTLY")
    )
    started = time.perf_counter()
    with hook.transaction(
        statement_timeout=settings.statement_timeout_seconds,
        lock_timeout=settings.lock_timeout_seconds,
    ) as conn:
        conn.execute(sql.SQL(load_sql("mviews/analyze.sql")).format(view=identifier))
    analyze_ms = (time.perf_counter() - started) * 1000
    return RefreshOutcome(
        view=view,
        status="success",
        mode=mode,
        refresh_ms=round(refresh_ms, 1),
        analyze_ms=round(analyze_ms, 1),
        details={"mode_reason": why},
    )


def _with_duration(outcome: RefreshOutcome, duration_ms: float) -> RefreshOutcome:
    from dataclasses import replace

    return replace(outcome, duration_ms=round(duration_ms, 1))


def _finish(hook: Any, entry: int, status: str, details: Mapping[str, Any], error: str | None) -> None:
    try:
        with hook.transaction() as conn:
            refresh_log.finish(conn, entry, status=status, details=details, error=error)
    except Exception:
        log.warning("could not record the refresh outcome in analytics_refresh_log", exc_info=True)


def _log_outcome(outcome: RefreshOutcome) -> None:
    if outcome.status == "success":
        log.info(
            "refreshed %s %s in %.0f ms (refresh %.0f ms, analyze %.0f ms; %s)",
            outcome.view,
            outcome.mode,
            outcome.duration_ms,
            outcome.refresh_ms or 0,
            outcome.analyze_ms or 0,
            outcome.details.get("mode_reason"),
        )
    elif outcome.status == "skipped":
        log.info("skipped %s: %s", outcome.view, outcome.reason)
    else:
        log.error("refresh of %s failed (SQLSTATE %s): %s", outcome.view, outcome.sqlstate, outcome.reason)
    metrics.incr("mview.refreshes", status=outcome.status, mode=outcome.mode or "none")
    if outcome.status == "success":
        metrics.timing("mview.duration", outcome.duration_ms, mode=outcome.mode)


def summarize(planned: Iterable[PlannedView], items: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """Lines for the views that failed and for those not refreshed, from the run's log rows.

    ``items`` is :func:`refresh_log.run_items` for the run. A planned view without a row never ran
    (its task failed before it could write one).
    """
    failed, not_refreshed = [], []
    for view in planned:
        row = items.get(view.key)
        if row is None:
            not_refreshed.append(f"{view.key}: never ran")
        elif row["status"] == "failed":
            failed.append(f"{view.key}: {row['error']}")
        elif row["status"] == "running":
            failed.append(f"{view.key}: did not finish (still marked running)")
        elif row["status"] == "skipped" and (row.get("details") or {}).get("upstream_failed"):
            not_refreshed.append(f"{view.key}: {row['error']}")
    return failed, not_refreshed
