"""Planning the ``reports`` DAG's runs: which reports are due, and the run rows of this DAG run."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from include.reports.config import ReportSettings
from include.reports.definitions import (
    InvalidReportError,
    ReportDefinition,
    ReportRequest,
    definition_from_row,
    validate_definition,
)
from include.reports.errors import ReportNotFoundError, ReportRunError
from include.reports.run_store import Services, one, rows
from include.sql import load_sql
from observability import metrics

log = logging.getLogger(__name__)

#: Open runs older than this are not picked up again by later DAG runs.
OPEN_RUN_MAX_AGE_DAYS = 7


def plan_runs(
    request: ReportRequest, *, dag_run_id: str, services: Services | None = None, now: datetime | None = None
) -> list[int]:
    """Create the runs this DAG run works on and return the ids of every run with work left.

    Scheduled: one run per report whose latest cron slot is due (missed slots are caught up once),
    plus earlier runs still waiting for generation or delivery. Ad-hoc: one run for the request.
    """
    ctx = services or Services.create()
    now = now or datetime.now(UTC)
    definition = resolve_request(request, services=ctx)
    if definition is None:
        return _plan_scheduled(ctx, dag_run_id, now)
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
            row = one(conn, "select_report_by_id", {"report_id": request.report_id})
            if row is None:
                raise ReportNotFoundError("report_id", f"no report with id {request.report_id} in analytics_reports")
        else:
            row = one(conn, "select_report_by_name", {"report_name": request.report_name})
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
        reports = rows(conn, "select_scheduled_reports")
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
        open_runs = rows(
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


def _run_values(definition: ReportDefinition, settings: ReportSettings, *, validated: bool) -> dict[str, Any]:
    """The columns a run copies from its definition, the settings filling in what it leaves open."""
    from psycopg.types.json import Jsonb

    max_attachment = definition.max_attachment_bytes
    return {
        "report_id": definition.id,
        "report_name": definition.name,
        "sql": definition.sql,
        "parameters": Jsonb(dict(definition.parameters) if validated else {}),
        "format": definition.format,
        "recipients": list(definition.recipients),
        "destinations": Jsonb([d.as_json() for d in definition.destinations]),
        "retention_days": definition.retention_days,
        "statement_timeout_seconds": definition.statement_timeout_seconds or settings.statement_timeout_seconds,
        "file_timeout_seconds": definition.file_timeout_seconds or settings.file_timeout_seconds,
        "run_timeout_seconds": definition.run_timeout_seconds or settings.run_timeout_seconds,
        "max_attachment_bytes": max_attachment if max_attachment is not None else settings.max_attachment_bytes,
        "email_subject": definition.email_subject,
        "chart": Jsonb(definition.chart.as_json()) if definition.chart else None,
    }


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
    """Insert the run of ``run_key`` (or find the one a previous try inserted); return its id."""
    params = {
        **_run_values(definition, settings, validated=validated),
        "trigger": trigger,
        "slot": slot,
        "run_key": run_key,
        "dag_run_id": dag_run_id,
        "status": status,
        "error": error,
    }
    inserted = one(conn, "insert_run", params)
    if inserted:
        return inserted["id"]
    existing = one(conn, "select_run_id_by_key", {"run_key": run_key})
    if existing is None:
        raise ReportRunError(f"run {run_key!r} was neither inserted nor found: a concurrent cleanup removed it")
    return existing["id"]
