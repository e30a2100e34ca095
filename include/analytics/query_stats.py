"""Query statistics: the top statements of each window from ``pg_stat_statements``, as deltas.

Each run reads the view once, compares it with the previous sample (the baseline table) and stores
the top statements of the window by execution time in ``analytics_query_statistics``. Resets and
evictions are detected (``pg_stat_statements_info.stats_reset``, counters going down, and
``stats_since`` on PostgreSQL 17+) so a delta is never negative or inflated: see
``include/sql/query_stats/insert_deltas.sql``. The first run only takes the baseline.

Without the extension (not available, not installed in the database, or not loaded through
``shared_preload_libraries``) the run is recorded as skipped with the reason and succeeds.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from include.analytics import refresh_log
from include.analytics.config import QueryStatisticsSettings
from include.sql import load_sql
from observability import metrics

log = logging.getLogger(__name__)

JOB = "query_statistics"
#: pg_stat_statements 1.9 (PostgreSQL 14) added ``toplevel`` and ``pg_stat_statements_info``.
MINIMUM_VERSION = (1, 9)


@dataclass(frozen=True)
class QueryStatsResult:
    status: str  # success | skipped
    reason: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    statements: int = 0
    stored: int = 0
    basis: dict[str, int] = field(default_factory=dict)
    stats_reset: bool = False
    evicted: int | None = None
    first_sample: bool = False

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("window_start", "window_end"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        return data


def missing_reason(extension: tuple) -> str | None:
    """Why ``pg_stat_statements`` cannot be read, from ``find_extension.sql``'s row; None if it can."""
    schema, version, available, preload, server_version, database = extension
    if server_version < 140000:
        return f"PostgreSQL {server_version // 10000} is too old: query statistics need PostgreSQL 14 or later"
    if schema is None:
        if not available:
            return "the pg_stat_statements extension is not available on this server (PostgreSQL contrib)"
        return (
            f"the pg_stat_statements extension is not installed in database {database!r}: run "
            "CREATE EXTENSION pg_stat_statements there, with pg_stat_statements in shared_preload_libraries"
        )
    if _version(version) < MINIMUM_VERSION:
        return f"pg_stat_statements {version} is too old: 1.9 or later is needed (ALTER EXTENSION ... UPDATE)"
    return None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def collect_query_statistics(
    hook: Any,
    settings: QueryStatisticsSettings,
    *,
    dag_run_id: str | None = None,
) -> QueryStatsResult:
    """Take one sample and store the window's top statements; skip (recorded) without the extension."""
    started = time.perf_counter()
    with hook.transaction(statement_timeout=settings.statement_timeout_seconds) as conn:
        conn.execute(load_sql("query_stats/lock.sql"))
        extension = conn.execute(load_sql("query_stats/find_extension.sql")).fetchone()
        reason = missing_reason(extension)
        if reason is None:
            reason = _take_snapshot(conn, extension, settings)
        if reason is not None:
            result = QueryStatsResult(status="skipped", reason=reason)
        else:
            result = _store_window(conn, extension[0], settings, dag_run_id)
        refresh_log.record(
            conn,
            job=JOB,
            target=None,
            status=result.status,
            dag_run_id=dag_run_id,
            details=result.as_dict(),
            error=result.reason,
            duration_ms=(time.perf_counter() - started) * 1000,
        )
    if result.status == "skipped":
        log.warning("query statistics skipped: %s", result.reason)
    elif result.first_sample:
        log.info("query statistics: first sample of %d statements taken as the baseline", result.statements)
    else:
        log.info(
            "query statistics for %s .. %s: %d statements, top %d stored (%s)%s%s",
            result.window_start,
            result.window_end,
            result.statements,
            result.stored,
            ", ".join(f"{k} {v}" for k, v in sorted(result.basis.items())) or "no activity",
            "; the statistics were reset in this window" if result.stats_reset else "",
            f"; {result.evicted} entries were evicted (raise pg_stat_statements.max)" if result.evicted else "",
        )
    metrics.incr("query_stats.runs", status=result.status)
    if result.status == "success":
        metrics.gauge("query_stats.statements", result.statements)
    return result


def _take_snapshot(conn: Any, extension: tuple, settings: QueryStatisticsSettings) -> str | None:
    """Read the view into ``pgss_now``; the reason when the library is not loaded, else None."""
    import psycopg
    from psycopg import sql

    schema, server_version = extension[0], extension[4]
    statement = sql.SQL(load_sql("query_stats/snapshot.sql")).format(
        schema=sql.Identifier(schema),
        stats_since=sql.SQL("s.stats_since" if server_version >= 170000 else "NULL"),
    )
    params = {"query_text_max_chars": settings.query_text_max_chars, "all_databases": settings.all_databases}
    try:
        with conn.transaction():  # a savepoint: the error below leaves the transaction usable
            conn.execute(statement, params)
    except psycopg.errors.ObjectNotInPrerequisiteState as error:
        return (
            f"pg_stat_statements is installed but not loaded ({str(error).strip()}; "
            f"shared_preload_libraries is {extension[3]!r}): add it there and restart PostgreSQL"
        )
    return None


def _store_window(
    conn: Any, schema: str, settings: QueryStatisticsSettings, dag_run_id: str | None
) -> QueryStatsResult:
    from psycopg import sql

    info = sql.SQL(load_sql("query_stats/info.sql")).format(schema=sql.Identifier(schema))
    sampled_at, dealloc, stats_reset, entries = conn.execute(info).fetchone()
    previous = conn.execute(load_sql("query_stats/select_state.sql")).fetchone()
    if previous is None:
        result = QueryStatsResult(status="success", window_end=sampled_at, statements=entries, first_sample=True)
    else:
        previous_at, previous_reset, previous_dealloc = previous
        was_reset = previous_reset is not None and stats_reset is not None and stats_reset != previous_reset
        inserted = conn.execute(
            load_sql("query_stats/insert_deltas.sql"),
            {
                "stats_reset": was_reset,
                "top_n": settings.top_n,
                "window_start": previous_at,
                "window_end": sampled_at,
                "dag_run_id": dag_run_id,
            },
        ).fetchall()
        evicted = None
        if not was_reset and dealloc is not None and previous_dealloc is not None:
            evicted = max(dealloc - previous_dealloc, 0)
        result = QueryStatsResult(
            status="success",
            window_start=previous_at,
            window_end=sampled_at,
            statements=entries,
            stored=len(inserted),
            basis=dict(Counter(row[0] for row in inserted)),
            stats_reset=was_reset,
            evicted=evicted,
        )
    conn.execute(load_sql("query_stats/clear_baseline.sql"))
    conn.execute(load_sql("query_stats/insert_baseline.sql"))
    conn.execute(
        load_sql("query_stats/upsert_state.sql"),
        {"sampled_at": sampled_at, "stats_reset": stats_reset, "dealloc": dealloc, "entries": entries},
    )
    return result
