"""Planning the ``reports`` DAG's runs: which reports are due, and the run rows of this DAG run."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from include.lineage.triggers import RelationChange
from include.reports.config import OPEN_RUN_MAX_AGE_DAYS, ReportSettings
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

if TYPE_CHECKING:
    from include.reports.audiences import Audience

log = logging.getLogger(__name__)


def plan_runs(
    request: ReportRequest,
    *,
    dag_run_id: str,
    changes: Sequence[RelationChange] = (),
    services: Services | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Create the runs this DAG run works on and return the ids of every run with work left.

    Scheduled: one run per report whose latest cron slot is due (missed slots are caught up once;
    a ``wait_for_data`` slot once its data arrived or its data wait limit passed), one per
    ``on_change`` report that reads a relation among ``changes`` (the run's triggering asset
    events), plus earlier runs still waiting for generation or delivery. Ad-hoc: one run for the request.
    """
    ctx = services or Services.create()
    now = now or datetime.now(UTC)
    definition = resolve_request(request, services=ctx)
    if definition is None:
        planned = _plan_changes(ctx, dag_run_id, now, changes)
        return _plan_scheduled(ctx, dag_run_id, now, planned)
    with ctx.hook.transaction() as conn:
        run_ids = _insert_runs(
            conn,
            ctx.settings,
            definition,
            trigger="adhoc",
            slot=now,
            run_key=f"adhoc:{dag_run_id}",
            dag_run_id=dag_run_id,
        )
    metrics.incr("reports.planned", len(run_ids), trigger="adhoc")
    log.info("ad-hoc run(s) %s of report %r (%s)", run_ids, definition.name, definition.format)
    return run_ids


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


def _plan_changes(ctx: Services, dag_run_id: str, now: datetime, changes: Sequence[RelationChange]) -> int:
    """Note the changes on the reports that read them; one run per ``on_change`` report that reads one."""
    from include.reports.data_schedule import changed_reports, record_changes, why

    if not changes:
        return 0
    with ctx.hook.transaction() as conn:
        noted = record_changes(conn, changes)
        reports = changed_reports(conn, changes)
    log.info("%d report(s) read what changed; %d generated on change", noted, len(reports))
    planned = 0
    for row in reports:
        try:
            definition = definition_from_row(row)
        except InvalidReportError as error:
            _record_invalid(ctx, row, error, dag_run_id, now)
            continue
        triggered_by = why(changes, definition.reads)
        with ctx.hook.transaction() as conn:
            _insert_runs(
                conn, ctx.settings, definition, trigger="change", slot=now,
                run_key=f"change:{definition.id}:{dag_run_id}", dag_run_id=dag_run_id, triggered_by=triggered_by,
            )  # fmt: skip
        planned += 1
        log.info("report %r generated because %s", definition.name, _describe(triggered_by))
    if planned:
        metrics.incr("reports.planned", planned, trigger="change")
    return planned


def _describe(triggered_by: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(f"{c['relation']} changed at {c['at']}" for c in triggered_by) or "its data arrived"


def _plan_scheduled(ctx: Services, dag_run_id: str, now: datetime, planned: int = 0) -> list[int]:
    """The due cron slots (a waiting one once its data is there), then every run with work left."""
    with ctx.hook.transaction() as conn:
        reports = rows(conn, "select_scheduled_reports")
    due = 0
    for row in reports:
        try:
            definition = definition_from_row(row)
            slot, wait = _due(definition, row, now)
        except InvalidReportError as error:
            _record_invalid(ctx, row, error, dag_run_id, now)
            continue
        if slot is None:
            continue
        if wait is not None and not wait.go:
            log.info("report %r, slot %s: %s", definition.name, slot.isoformat(), wait.reason)
            continue
        _insert_scheduled(ctx, definition, slot, dag_run_id, wait)
        due += 1
    if due:
        metrics.incr("reports.planned", due, trigger="scheduled")
    return _open_runs(ctx, planned + due)


def _due(definition: ReportDefinition, row: Mapping[str, Any], now: datetime) -> tuple[datetime | None, Any]:
    """The slot due now (or ``None``), and for a ``wait_for_data`` report whether its data is there."""
    from include.reports.data_schedule import data_wait
    from include.reports.schedule import due_slot, previous_slot

    anchor = row["last_slot"] or row["created_at"]
    slot = due_slot(definition.schedule, definition.timezone, anchor=anchor, now=now)
    if slot is None or not definition.wait_for_data:
        return slot, None
    wait = data_wait(
        slot=slot,
        previous_slot=previous_slot(definition.schedule, definition.timezone, slot),
        reads_changed_at=definition.reads_changed_at,
        limit_seconds=definition.data_wait_limit_seconds,
        now=now,
    )
    return slot, wait


def _insert_scheduled(ctx: Services, definition: ReportDefinition, slot: datetime, dag_run_id: str, wait) -> None:
    with ctx.hook.transaction() as conn:
        _insert_runs(
            conn, ctx.settings, definition, trigger="scheduled", slot=slot,
            run_key=f"scheduled:{definition.id}:{slot.isoformat()}", dag_run_id=dag_run_id,
            triggered_by=list(wait.triggered_by) if wait is not None and wait.triggered_by else None,
            data_note=wait.note if wait is not None else None,
        )  # fmt: skip
        conn.execute(load_sql("reports/supersede_runs.sql"), {"report_id": definition.id, "slot": slot})
    reason = f" ({wait.reason})" if wait is not None else ""
    log.info("report %r is due for slot %s%s", definition.name, slot.isoformat(), reason)
    if wait is not None and wait.note:
        log.warning("report %r: %s", definition.name, wait.note)


def _open_runs(ctx: Services, planned: int) -> list[int]:
    """Every run with work left (pending, or generated and not all delivered), not too old."""
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


def _insert_runs(
    conn, settings: ReportSettings, definition: ReportDefinition, *, run_key: str, **fields: Any
) -> list[int]:
    """The runs of one report and slot: one per audience (its key ends in ``:<audience>``), else one."""
    if not definition.audiences:
        return [_insert_run(conn, settings, definition, run_key=run_key, **fields)]
    return [
        _insert_run(conn, settings, for_audience(definition, audience), run_key=f"{run_key}:{audience.name}",
                    audience=audience.name, **fields)
        for audience in definition.audiences
    ]  # fmt: skip


def for_audience(definition: ReportDefinition, audience: Audience) -> ReportDefinition:
    """What one audience's run generates and delivers: its recipients, destinations and parameter values."""
    return replace(
        definition,
        recipients=audience.recipients,
        destinations=audience.destinations,
        parameters={**definition.parameters, **audience.params},
        audiences=(),
    )


def _deadline_at(definition: ReportDefinition, trigger: str, slot: datetime) -> datetime | None:
    """When a scheduled or on-change run must be delivered by (include/reports/deadlines.py); ad hoc: never."""
    from datetime import timedelta

    if definition.deadline_seconds is None or trigger not in ("scheduled", "change"):
        return None
    return slot + timedelta(seconds=definition.deadline_seconds)


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
    triggered_by: list[dict[str, Any]] | None = None,
    data_note: str | None = None,
    audience: str | None = None,
) -> int:
    """Insert the run of ``run_key`` (or find the one a previous try inserted); return its id."""
    from psycopg.types.json import Jsonb

    params = {
        **_run_values(definition, settings, validated=validated),
        "trigger": trigger,
        "slot": slot,
        "run_key": run_key,
        "dag_run_id": dag_run_id,
        "status": status,
        "error": error,
        "triggered_by": Jsonb(triggered_by) if triggered_by is not None else None,
        "data_note": data_note,
        "audience": audience,
        "deadline_at": _deadline_at(definition, trigger, slot),
    }
    inserted = one(conn, "insert_run", params)
    if inserted:
        return inserted["id"]
    existing = one(conn, "select_run_id_by_key", {"run_key": run_key})
    if existing is None:
        raise ReportRunError(f"run {run_key!r} was neither inserted nor found: a concurrent cleanup removed it")
    return existing["id"]
