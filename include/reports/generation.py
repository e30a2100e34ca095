"""Generating a report run's file: claim the run, export the query, publish the file, record it."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Mapping
from typing import Any

from include.reports.errors import ReportRunError
from include.reports.run_store import Services, error_text, mark_failed, one, run_file_name, summary
from include.reports.storage import safe_name
from include.sql import load_sql
from observability import metrics

log = logging.getLogger(__name__)


def is_query_error(error: BaseException) -> bool:
    """An error of the report's SQL (refused, failed, timed out): retrying the same SQL will not help."""
    import psycopg

    from hooks.warehouse import is_database_failure
    from include.reports.errors import ReportGenerationError

    if isinstance(error, ReportGenerationError):
        return True
    return isinstance(error, psycopg.Error) and not is_database_failure(error)


def generate_run(run_id: int, *, worker: str, services: Services | None = None) -> dict[str, Any]:
    """Generate the file of run ``run_id`` (once) and publish it to the archive.

    Raises ``AirflowSkipException`` when there is nothing to do (already generated elsewhere, given
    up, superseded), ``AirflowFailException`` when the report's SQL fails (no retry helps), and
    other errors to be retried.
    """
    ctx = services or Services.create()
    run, claimed = _claim(ctx, run_id, worker)
    if not claimed:
        log.info("run %s of report %r was already generated: %s", run_id, run["report_name"], run["location"])
        return summary(run, note="already generated")
    started = time.perf_counter()
    file_name, location, result = _export_and_publish(ctx, run, worker)
    duration_ms = int((time.perf_counter() - started) * 1000)
    generated = _record_generated(ctx, run, worker, file_name, location, result, duration_ms)
    _report_lineage(ctx, run, location)
    return generated


def _report_lineage(ctx: Services, run: Mapping[str, Any], location: str) -> None:
    """OpenLineage: the run read what its report reads (a stored report's row, else its SQL) and wrote its file."""
    from include.lineage.assets import file_uri
    from include.lineage.openlineage import report_lineage, report_relations
    from include.lineage.relations import relations_read

    try:
        if run["report_id"] is not None:
            with ctx.hook.transaction(statement_timeout=30) as conn:
                stored = one(conn, "select_report_reads", {"report_id": run["report_id"]})
            reads = list((stored or {}).get("reads") or [])
        else:
            with ctx.reader.read_only_transaction(statement_timeout=30) as conn:
                reads = list(relations_read(conn, run["sql"]).relations)
        report_relations(ctx.reader, read=reads)
        report_lineage(ctx.reader, outputs=[file_uri(location)])
    except Exception:  # lineage is an observer: it never fails the report
        log.warning("lineage of report run %s not reported", run["id"], exc_info=True)


def _claim(ctx: Services, run_id: int, worker: str) -> tuple[dict[str, Any], bool]:
    """The run, and whether this worker claimed it: ``False`` for a run generated before.

    Raises ``AirflowSkipException`` for a run there is nothing to do for (missing, given up, held
    by another worker, superseded).
    """
    from airflow.sdk.exceptions import AirflowSkipException

    settings = ctx.settings
    with ctx.hook.transaction() as conn:
        claimed = one(
            conn,
            "claim_run",
            {
                "run_id": run_id,
                "worker": worker,
                "lease_seconds": settings.claim_lease_seconds,
                "max_attempts": settings.max_attempts,
            },
        )
        run = one(conn, "select_run", {"run_id": run_id})
    if run is None:
        raise AirflowSkipException(f"report run {run_id} does not exist")
    if claimed:
        return run, True
    if run["status"] in ("generated", "delivered"):
        return run, False
    name = run["report_name"]
    if run["status"] == "pending":  # attempts used up
        mark_failed(ctx, run_id, f"gave up after {run['attempts']} attempts; last error: {run['error']}", "failed")
        raise AirflowSkipException(f"report {name!r} run {run_id}: gave up after {run['attempts']} attempts")
    holder = f" (claimed by {run['claimed_by']} until {run['claim_expires_at']})" if run["status"] == "running" else ""
    raise AirflowSkipException(f"report {name!r} run {run_id} is {run['status']}{holder}")


def _export_and_publish(ctx: Services, run: Mapping[str, Any], worker: str) -> tuple[str, str, Any]:
    """Export the run's query to a file in staging and publish it to the archive; record failures.

    A refused breaker releases the claim (the task is rescheduled); an error of the report's SQL
    fails the run for good (``AirflowFailException``); any other error leaves it pending for a retry.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from hooks.circuit_breaker import CircuitOpenError
    from include.reports.errors import describe_failure
    from include.reports.export import export_run
    from include.reports.limits import RunClock, time_limits
    from include.reports.storage import archive_path, publish

    settings, run_id, name = ctx.settings, run["id"], run["report_name"]
    file_name = run_file_name(run)
    staging = settings.staging_dir / f"run-{run_id}"
    clock = RunClock(time_limits(run))
    try:
        result = export_run(ctx.reader, run, staging / file_name, clock)
        target = archive_path(settings.storage_url, settings.storage_conn_id, safe_name(name), run["slot"], file_name)
        location = publish(result.path, target, check=lambda: clock.check_run("publishing the file to the archive"))
        if result.chart_path is not None:  # the chart of a report that is not a png: beside its file, for email
            publish(result.chart_path, target.parent / result.chart_path.name)
    except CircuitOpenError:
        with ctx.hook.transaction() as conn:
            conn.execute(load_sql("reports/release_run.sql"), {"run_id": run_id, "worker": worker})
        raise
    except Exception as error:
        if is_query_error(error):
            message = f"report {name!r} run {run_id}: {describe_failure(error)}"
            mark_failed(ctx, run_id, message, "failed")
            metrics.incr("reports.failed", reason=getattr(error, "reason", "query"))
            raise AirflowFailException(message) from error
        mark_failed(ctx, run_id, error_text(error), "pending")
        metrics.incr("reports.failed", reason="error")
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return file_name, location, result


def _record_generated(
    ctx: Services, run: Mapping[str, Any], worker: str, file_name: str, location: str, result: Any, duration_ms: int
) -> dict[str, Any]:
    """Mark the run generated (if this worker still holds its claim) and count it."""
    run_id, name, fmt = run["id"], run["report_name"], run["format"]
    with ctx.hook.transaction() as conn:
        marked = one(
            conn,
            "mark_run_generated",
            {
                "run_id": run_id,
                "worker": worker,
                "rows": result.rows,
                "bytes": result.bytes,
                "duration_ms": duration_ms,
                "file_name": file_name,
                "location": location,
            },
        )
        run = one(conn, "select_run", {"run_id": run_id})
    if not marked:
        raise ReportRunError(f"report {name!r} run {run_id}: the claim was lost while generating (now {run['status']})")
    metrics.incr("reports.generated", format=fmt, trigger=run["trigger"])
    metrics.incr("reports.rows", result.rows, format=fmt)
    metrics.incr("reports.bytes", result.bytes, format=fmt)
    metrics.timing("reports.duration", duration_ms, format=fmt)
    log.info(
        "report %r run %s: %d rows, %d bytes in %.2fs -> %s",
        name,
        run_id,
        result.rows,
        result.bytes,
        duration_ms / 1000,
        location,
    )
    return summary(run)
