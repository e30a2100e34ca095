"""The work of the ``reports`` DAG: plan runs, generate each, deliver each, clean up old files.

Every step records its state in ``analytics_report_runs`` / ``analytics_report_deliveries`` and
takes an atomic claim first, so a retried or concurrent task never generates a run twice or sends
a delivery twice: a run is unique per report and slot (or per ad-hoc trigger), a delivery per run,
channel and target, and a delivery marked ``sent`` is never claimed again.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from include.reports.config import ReportSettings
from include.reports.definitions import (
    InvalidReportError,
    ReportDefinition,
    ReportRequest,
    definition_from_row,
    safe_name,
    validate_definition,
)
from include.sql import load_sql
from observability import metrics

if TYPE_CHECKING:
    from hooks.warehouse import WarehouseHook, WarehouseReaderHook

log = logging.getLogger(__name__)

#: Open runs older than this are not picked up again by later DAG runs.
OPEN_RUN_MAX_AGE_DAYS = 7
#: Leftover local staging directories older than this are removed by the cleanup.
STAGING_MAX_AGE = timedelta(days=1)


class ReportRunError(RuntimeError):
    """A run could not be completed now; the task is retried."""


class ReportNotFoundError(InvalidReportError):
    """An ad-hoc request names a report that does not exist."""


@dataclass
class Services:
    """What every step needs: the platform's hook (runs, deliveries), the reader (report SQL), the settings."""

    hook: WarehouseHook
    settings: ReportSettings
    reader: WarehouseReaderHook

    @classmethod
    def create(cls, settings: ReportSettings | None = None) -> Services:
        from hooks.warehouse import WarehouseHook
        from include.security.reader import reader_hook

        return cls(
            WarehouseHook(application_name="analytics-platform-reports"),
            settings or ReportSettings.from_env(),
            reader_hook("analytics-platform-reports"),
        )


def _rows(conn, name: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(load_sql(f"reports/{name}.sql"), params or {})
        return cur.fetchall() if cur.description else []


def _one(conn, name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    rows = _rows(conn, name, params)
    return rows[0] if rows else None


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:2000]


# ============================================================================ planning


def plan_runs(
    request: ReportRequest, *, dag_run_id: str, services: Services | None = None, now: datetime | None = None
) -> list[int]:
    """Create the runs this DAG run works on and return the ids of every run with work left.

    Scheduled: one run per report whose latest cron slot is due (missed slots are caught up once),
    plus earlier runs still waiting for generation or delivery. Ad-hoc: one run for the request.
    """
    ctx = services or Services.create()
    now = now or datetime.now(UTC)
    if request.mode == "scheduled":
        return _plan_scheduled(ctx, dag_run_id, now)
    definition = resolve_request(request, services=ctx)
    assert definition is not None
    with ctx.hook.transaction() as conn:
        run_id = _insert_run(
            conn,
            ctx.settings,
            definition,
            trigger="adhoc",
            slot=now,
            run_key=f"adhoc:{dag_run_id}",
            dag_run_id=dag_run_id,
        )
    metrics.incr("reports.planned", trigger="adhoc")
    log.info("ad-hoc run %s of report %r (%s)", run_id, definition.name, definition.format)
    return [run_id]


def resolve_request(request: ReportRequest, *, services: Services | None = None) -> ReportDefinition | None:
    """The definition an ad-hoc request runs (stored report with overrides, or inline); ``None`` if scheduled."""
    if request.mode == "scheduled":
        return None
    if request.mode == "inline":
        return validate_definition(request.inline_definition())
    ctx = services or Services.create()
    with ctx.hook.transaction() as conn:
        if request.report_id is not None:
            row = _one(conn, "select_report_by_id", {"report_id": request.report_id})
            if row is None:
                raise ReportNotFoundError("report_id", f"no report with id {request.report_id} in analytics_reports")
        else:
            row = _one(conn, "select_report_by_name", {"report_name": request.report_name})
            if row is None:
                raise ReportNotFoundError(
                    "report_name", f"no report named {request.report_name!r} in analytics_reports"
                )
    definition = request.apply_overrides(definition_from_row(row))
    if not definition.enabled:
        log.warning("report %r is disabled; generating it anyway because it was requested explicitly", definition.name)
    return validate_definition(definition)


def _plan_scheduled(ctx: Services, dag_run_id: str, now: datetime) -> list[int]:
    from include.reports.schedule import due_slot

    with ctx.hook.transaction() as conn:
        reports = _rows(conn, "select_scheduled_reports")
    planned = 0
    for row in reports:
        try:
            definition = definition_from_row(row)
            anchor = row["last_slot"] or row["created_at"]
            slot = due_slot(definition.schedule, definition.timezone, anchor=anchor, now=now)
        except InvalidReportError as error:
            _record_invalid(ctx, row, error, dag_run_id, now)
            continue
        if slot is None:
            continue
        with ctx.hook.transaction() as conn:
            run_key = f"scheduled:{definition.id}:{slot.isoformat()}"
            _insert_run(
                conn, ctx.settings, definition, trigger="scheduled", slot=slot, run_key=run_key, dag_run_id=dag_run_id
            )
            conn.execute(load_sql("reports/supersede_runs.sql"), {"report_id": definition.id, "slot": slot})
        planned += 1
        log.info("report %r is due for slot %s", definition.name, slot.isoformat())
    if planned:
        metrics.incr("reports.planned", planned, trigger="scheduled")
    with ctx.hook.transaction() as conn:
        open_runs = _rows(
            conn,
            "select_open_runs",
            {"max_age_days": OPEN_RUN_MAX_AGE_DAYS, "max_attempts": ctx.settings.max_attempts},
        )
    run_ids = [r["id"] for r in open_runs]
    log.info("%d report(s) newly due; %d run(s) with work left: %s", planned, len(run_ids), run_ids)
    return run_ids


def _record_invalid(
    ctx: Services, row: Mapping[str, Any], error: InvalidReportError, dag_run_id: str, now: datetime
) -> None:
    """An invalid definition becomes one failed run per definition version, where operators see it."""
    log.error("%s", error)
    version = (row.get("updated_at") or row.get("created_at") or now).isoformat()
    definition = ReportDefinition(
        id=row["id"],
        name=row["name"],
        sql=row.get("sql") or "",
        format=row.get("format") or "csv",
        retention_days=row.get("retention_days") or 30,
    )
    with ctx.hook.transaction() as conn:
        inserted = _insert_run(
            conn,
            ctx.settings,
            definition,
            trigger="invalid",
            slot=now,
            run_key=f"invalid:{row['id']}:{version}",
            dag_run_id=dag_run_id,
            status="failed",
            error=str(error),
            validated=False,
        )
    if inserted:
        metrics.incr("reports.failed", reason="invalid")


def _insert_run(
    conn,
    settings: ReportSettings,
    definition: ReportDefinition,
    *,
    trigger: str,
    slot: datetime,
    run_key: str,
    dag_run_id: str,
    status: str = "pending",
    error: str | None = None,
    validated: bool = True,
) -> int:
    from psycopg.types.json import Jsonb

    params = {
        "report_id": definition.id,
        "report_name": definition.name,
        "trigger": trigger,
        "slot": slot,
        "run_key": run_key,
        "dag_run_id": dag_run_id,
        "sql": definition.sql,
        "parameters": Jsonb(dict(definition.parameters) if validated else {}),
        "format": definition.format,
        "recipients": list(definition.recipients),
        "destinations": Jsonb([d.as_json() for d in definition.destinations]),
        "retention_days": definition.retention_days,
        "statement_timeout_seconds": definition.statement_timeout_seconds or settings.statement_timeout_seconds,
        "file_timeout_seconds": definition.file_timeout_seconds or settings.file_timeout_seconds,
        "run_timeout_seconds": definition.run_timeout_seconds or settings.run_timeout_seconds,
        "max_attachment_bytes": (
            definition.max_attachment_bytes
            if definition.max_attachment_bytes is not None
            else settings.max_attachment_bytes
        ),
        "email_subject": definition.email_subject,
        "chart": Jsonb(definition.chart.as_json()) if definition.chart else None,
        "status": status,
        "error": error,
    }
    inserted = _one(conn, "insert_run", params)
    if inserted:
        return inserted["id"]
    existing = _one(conn, "select_run_id_by_key", {"run_key": run_key})
    assert existing is not None, run_key
    return existing["id"]


# ============================================================================ generation


def run_file_name(run: Mapping[str, Any]) -> str:
    slot: datetime = run["slot"].astimezone(UTC)
    return f"{safe_name(run['report_name'])}_{slot:%Y%m%dT%H%M%SZ}_run{run['id']}.{run['format']}"


def _summary(run: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "run_id": run["id"],
        "report": run["report_name"],
        "status": run["status"],
        "rows": run.get("rows"),
        "bytes": run.get("bytes"),
        "location": run.get("location"),
        **extra,
    }


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
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from hooks.circuit_breaker import CircuitOpenError
    from include.reports.errors import describe_failure
    from include.reports.export import export_run
    from include.reports.limits import RunClock, time_limits
    from include.reports.storage import archive_path, publish

    ctx = services or Services.create()
    settings = ctx.settings
    with ctx.hook.transaction() as conn:
        claimed = _one(
            conn,
            "claim_run",
            {
                "run_id": run_id,
                "worker": worker,
                "lease_seconds": settings.claim_lease_seconds,
                "max_attempts": settings.max_attempts,
            },
        )
        run = _one(conn, "select_run", {"run_id": run_id})
    if run is None:
        raise AirflowSkipException(f"report run {run_id} does not exist")
    if not claimed:
        if run["status"] in ("generated", "delivered"):
            log.info("run %s of report %r was already generated: %s", run_id, run["report_name"], run["location"])
            return _summary(run, note="already generated")
        if run["status"] == "pending":  # attempts used up
            _mark_failed(ctx, run_id, f"gave up after {run['attempts']} attempts; last error: {run['error']}", "failed")
            raise AirflowSkipException(
                f"report {run['report_name']!r} run {run_id}: gave up after {run['attempts']} attempts"
            )
        raise AirflowSkipException(
            f"report {run['report_name']!r} run {run_id} is {run['status']}"
            + (
                f" (claimed by {run['claimed_by']} until {run['claim_expires_at']})"
                if run["status"] == "running"
                else ""
            )
        )

    name, fmt = run["report_name"], run["format"]
    file_name = run_file_name(run)
    staging = settings.staging_dir / f"run-{run_id}"
    clock = RunClock(time_limits(run))
    started = time.perf_counter()
    try:
        result = export_run(ctx.reader, run, staging / file_name, clock)
        target = archive_path(settings.storage_url, settings.storage_conn_id, safe_name(name), run["slot"], file_name)
        location = publish(result.path, target, check=lambda: clock.check_run("publishing the file to the archive"))
    except CircuitOpenError:
        with ctx.hook.transaction() as conn:
            conn.execute(load_sql("reports/release_run.sql"), {"run_id": run_id, "worker": worker})
        raise
    except Exception as error:
        if is_query_error(error):
            message = f"report {name!r} run {run_id}: {describe_failure(error)}"
            _mark_failed(ctx, run_id, message, "failed")
            metrics.incr("reports.failed", reason=getattr(error, "reason", "query"))
            raise AirflowFailException(message) from error
        _mark_failed(ctx, run_id, _error_text(error), "pending")
        metrics.incr("reports.failed", reason="error")
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    duration_ms = int((time.perf_counter() - started) * 1000)
    with ctx.hook.transaction() as conn:
        marked = _one(
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
        run = _one(conn, "select_run", {"run_id": run_id})
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
    return _summary(run)


def _mark_failed(ctx: Services, run_id: int, error: str, status: str) -> None:
    with ctx.hook.transaction() as conn:
        conn.execute(load_sql("reports/mark_run_failed.sql"), {"run_id": run_id, "error": error, "status": status})


# ============================================================================ delivery


class DeliveryError(ReportRunError):
    """One or more deliveries of a run failed; they stay pending and are retried."""


def _delivery_targets(run: Mapping[str, Any], settings: ReportSettings) -> list[dict[str, Any]]:
    targets = []
    if run["recipients"]:
        targets.append({"channel": "email", "target": ", ".join(run["recipients"]), "conn_id": settings.smtp_conn_id})
    for destination in run["destinations"] or []:
        conn_id = destination.get("conn_id") or settings.destination_conn_id
        targets.append({"channel": "object_storage", "target": destination["url"], "conn_id": conn_id})
    return targets


def deliver_run(run_id: int, *, worker: str, services: Services | None = None) -> dict[str, Any]:
    """Send run ``run_id`` to each of its recipients and destinations that has not had it yet.

    Each delivery is claimed atomically and marked ``sent`` right after it went out, so a retried
    task sends only what is missing. Failed deliveries are recorded and retried (by the task's
    retries, then by later DAG runs) up to ``max_attempts``.
    """
    from airflow.sdk.exceptions import AirflowSkipException

    from hooks.circuit_breaker import CircuitOpenError

    ctx = services or Services.create()
    settings = ctx.settings
    with ctx.hook.transaction() as conn:
        run = _one(conn, "select_run", {"run_id": run_id})
        if run is None or run["status"] not in ("generated", "delivered"):
            status = run["status"] if run else "missing"
            raise AirflowSkipException(f"report run {run_id} is {status}: nothing to deliver")
        for target in _delivery_targets(run, settings):
            conn.execute(load_sql("reports/insert_delivery.sql"), {"run_id": run_id, **target})
        deliveries = _rows(conn, "select_deliveries", {"run_id": run_id})

    failures: list[str] = []
    waiting: list[str] = []
    refused: CircuitOpenError | None = None
    sent = 0
    for delivery in deliveries:
        if delivery["status"] == "sent":
            continue
        label = f"{delivery['channel']} {delivery['target']}"
        with ctx.hook.transaction() as conn:
            claimed = _one(
                conn,
                "claim_delivery",
                {
                    "delivery_id": delivery["id"],
                    "worker": worker,
                    "lease_seconds": settings.claim_lease_seconds,
                    "max_attempts": settings.max_attempts,
                },
            )
        if not claimed:
            if delivery["attempts"] >= settings.max_attempts:
                failures.append(f"{label}: gave up after {delivery['attempts']} attempts ({delivery['error']})")
            else:  # another task holds it, or one died while sending: it may have gone out
                waiting.append(label)
                log.warning(
                    "report %r run %s: %s is claimed by %s until %s; it may have been sent, so it is only "
                    "tried again once that claim expires",
                    run["report_name"],
                    run_id,
                    label,
                    delivery["claimed_by"],
                    delivery["claim_expires_at"],
                )
            continue
        try:
            location, message_id = _deliver_one(run, delivery, settings)
        except CircuitOpenError as error:
            with ctx.hook.transaction() as conn:
                conn.execute(load_sql("reports/release_delivery.sql"), {"delivery_id": delivery["id"]})
            refused = error
            log.warning("report %r run %s: %s refused: %s", run["report_name"], run_id, label, error)
            continue
        except Exception as error:
            with ctx.hook.transaction() as conn:
                conn.execute(
                    load_sql("reports/mark_delivery_failed.sql"),
                    {"delivery_id": delivery["id"], "error": _error_text(error)},
                )
            metrics.incr("reports.delivery_failed", channel=delivery["channel"])
            failures.append(f"{label}: {_error_text(error)}")
            log.warning("report %r run %s: %s failed: %s", run["report_name"], run_id, label, error)
            continue
        with ctx.hook.transaction() as conn:
            conn.execute(
                load_sql("reports/mark_delivery_sent.sql"),
                {"delivery_id": delivery["id"], "location": location, "message_id": message_id},
            )
        sent += 1
        metrics.incr("reports.delivered", channel=delivery["channel"])
        log.info("report %r run %s: delivered to %s", run["report_name"], run_id, label)

    with ctx.hook.transaction() as conn:
        deliveries = _rows(conn, "select_deliveries", {"run_id": run_id})
        if all(d["status"] == "sent" for d in deliveries):
            conn.execute(load_sql("reports/mark_run_delivered.sql"), {"run_id": run_id})
        elif all(d["status"] == "sent" or d["attempts"] >= settings.max_attempts for d in deliveries) and failures:
            conn.execute(
                load_sql("reports/mark_run_failed.sql"),
                {"run_id": run_id, "status": "failed", "error": "deliveries gave up: " + "; ".join(failures)},
            )
        run = _one(conn, "select_run", {"run_id": run_id})
    if failures:
        raise DeliveryError(
            f"report {run['report_name']!r} run {run_id}: {len(failures)} of {len(deliveries)} deliveries failed: "
            + "; ".join(failures)
        )
    if refused is not None:
        raise refused
    return _summary(
        run,
        sent=sent,
        waiting=waiting,
        deliveries=[{k: d[k] for k in ("channel", "target", "status")} for d in deliveries],
    )


def _deliver_one(
    run: Mapping[str, Any], delivery: Mapping[str, Any], settings: ReportSettings
) -> tuple[str | None, str | None]:
    """Perform one delivery; return (location or link, Message-ID)."""
    from include.reports.delivery import ReportEmail, copy_to_destination, send_report_email
    from include.reports.storage import is_local, link_for, location_without_credentials, storage_path

    archive = storage_path(run["location"])
    if delivery["channel"] == "object_storage":
        return copy_to_destination(archive, delivery["target"], delivery["conn_id"], run["file_name"]), None

    attach = run["bytes"] <= run["max_attachment_bytes"]
    local_copy = None
    link = None
    recorded = None  # what the delivery row keeps: the file's URL, never a signed link
    expiry_text = None
    if attach:
        if is_local(archive):
            attachment = archive.path
        else:  # the SMTP hook attaches local files
            local_copy = settings.staging_dir / f"mail-{run['id']}-{delivery['id']}" / run["file_name"]
            local_copy.parent.mkdir(parents=True, exist_ok=True)
            with archive.open("rb") as src, local_copy.open("wb") as out:
                shutil.copyfileobj(src, out, 8 * 1024 * 1024)
            attachment = str(local_copy)
    else:
        attachment = None
        link = link_for(archive, settings.link_expiry_seconds)
        recorded = location_without_credentials(archive)
        if not is_local(archive):
            expiry = datetime.now(UTC) + timedelta(seconds=settings.link_expiry_seconds)
            expiry_text = f"{expiry:%Y-%m-%d %H:%M} UTC"
    slot: datetime = run["slot"].astimezone(UTC)
    subject = run["email_subject"] or f"Report {run['report_name']} ({slot:%Y-%m-%d %H:%M} UTC)"
    email = ReportEmail(
        run_id=run["id"],
        delivery_id=delivery["id"],
        report_name=run["report_name"],
        slot_text=f"{slot:%Y-%m-%d %H:%M} UTC",
        recipients=tuple(run["recipients"]),
        subject=subject,
        file_name=run["file_name"],
        rows=run["rows"] or 0,
        bytes=run["bytes"] or 0,
        attachment=attachment,
        link=link,
        link_expiry_text=expiry_text,
    )
    try:
        message_id = send_report_email(email, smtp_conn_id=delivery["conn_id"] or settings.smtp_conn_id)
    finally:
        if local_copy is not None:
            shutil.rmtree(local_copy.parent, ignore_errors=True)
    return recorded, message_id


# ============================================================================ retention


class CleanupError(RuntimeError):
    """Some expired files could not be deleted; they are tried again by the next cleanup."""


def cleanup_expired(*, services: Services | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Delete the files of runs past their report's retention (archive and object storage copies)
    and leftover local staging files. Each run is handled on its own: one failure does not stop the rest.
    """
    from include.reports.storage import delete

    ctx = services or Services.create()
    now = now or datetime.now(UTC)
    with ctx.hook.transaction() as conn:
        expired = _rows(conn, "select_expired_runs", {"now": now})
    deleted = 0
    failures = []
    for run in expired:
        try:
            for location in [run["location"], *run["copies"]]:
                if delete(location):
                    deleted += 1
        except Exception as error:
            failures.append(f"run {run['id']} ({run['report_name']}): {_error_text(error)}")
            log.warning("could not delete the files of report run %s: %s", run["id"], error)
            continue
        with ctx.hook.transaction() as conn:
            conn.execute(load_sql("reports/mark_run_cleaned.sql"), {"run_id": run["id"]})
    staging_removed = _clean_staging(ctx.settings, now)
    if deleted:
        metrics.incr("reports.cleaned", deleted)
    log.info(
        "retention: %d expired run(s), %d file(s) deleted, %d staging dir(s) removed",
        len(expired),
        deleted,
        staging_removed,
    )
    if failures:
        raise CleanupError(f"{len(failures)} expired run(s) could not be cleaned: " + "; ".join(failures))
    return {"expired_runs": len(expired), "files_deleted": deleted, "staging_removed": staging_removed}


def _clean_staging(settings: ReportSettings, now: datetime) -> int:
    root = settings.staging_dir
    if not root.is_dir():
        return 0
    cutoff = (now - STAGING_MAX_AGE).timestamp()
    removed = 0
    for entry in root.iterdir():
        try:
            if entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
                removed += 1
        except OSError as error:
            log.warning("could not remove staging leftover %s: %s", entry, error)
    return removed
