"""Entry points of the ``reports`` DAG's first tasks: validate the trigger, plan the runs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from include.reports.charts import check_chart_columns
from include.reports.definitions import InvalidReportError, ReportRequest, parse_request

log = logging.getLogger(__name__)

#: Statement timeout (seconds) for checking an ad-hoc query without running it.
SQL_CHECK_TIMEOUT = 30


def _fail(error: InvalidReportError):
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(f"invalid report request: {error}")


def _request(fields: Mapping[str, Any] | None) -> ReportRequest:
    try:
        return parse_request(fields)
    except InvalidReportError as error:
        raise _fail(error) from None


def check_inline_sql(request: ReportRequest, services=None) -> tuple[str, ...]:
    """Prepare an ad-hoc query (read-only, not run): syntax errors and several statements name ``sql``."""
    import psycopg

    from include.reports.export import ReportQueryError, bind_sql, describe_statement
    from include.reports.run_store import Services

    services = services or Services.create()
    parameters = {"slot": datetime.now(UTC), **(request.parameters or {})}
    try:
        with services.reader.read_only_transaction(statement_timeout=SQL_CHECK_TIMEOUT) as conn:
            return describe_statement(conn, bind_sql(conn, request.sql or "", parameters))
    except ReportQueryError as error:
        raise InvalidReportError("sql", str(error)) from None
    except psycopg.Error as error:
        from hooks.warehouse import is_database_failure

        if is_database_failure(error):
            raise
        raise InvalidReportError("sql", str(error).strip()) from None


def validate_request(fields: Mapping[str, Any] | None, services=None) -> dict[str, Any]:
    """The first task: every field of the trigger (the run's Params), the named report and the ad-hoc SQL."""
    from include.reports.planning import resolve_request

    request = _request(fields)
    try:
        definition = resolve_request(request, services=services)
        if request.mode == "inline":
            columns = check_inline_sql(request, services=services)
            if request.chart is not None:
                check_chart_columns(request.chart, columns)
    except InvalidReportError as error:
        raise _fail(error) from None
    summary: dict[str, Any] = {"mode": request.mode}
    if definition is not None:
        summary.update(
            report=definition.name,
            report_id=definition.id,
            format=definition.format,
            recipients=list(definition.recipients),
            destinations=[d.url for d in definition.destinations],
        )
        if definition.audiences:
            summary["audiences"] = [a.name for a in definition.audiences]
    if definition is not None and definition.chart is not None:
        summary["chart"] = definition.chart.as_json()
    log.info("report request: %s", summary)
    return summary


def plan(
    fields: Mapping[str, Any] | None, *, dag_run_id: str, triggering_asset_events: Any = None, services=None
) -> list[int]:
    """The planning task: create the runs of this DAG run (its Params: ``fields``); every run with work left.

    First what every report reads is worked out again where it is stale (on the reader
    connection); a run that asset events triggered plans the reports that read what changed.
    """
    from include.lineage.definitions import refresh_reads
    from include.lineage.triggers import log_changes, relation_changes
    from include.reports.planning import plan_runs
    from include.reports.run_store import Services

    request = _request(fields)
    services = services or Services.create()
    refresh_reads(services.hook, services.reader, "analytics_reports")
    changes = relation_changes(triggering_asset_events) if request.mode == "scheduled" else []
    log_changes(log, changes, "reports")
    try:
        return plan_runs(request, dag_run_id=dag_run_id, changes=changes, services=services)
    except InvalidReportError as error:
        raise _fail(error) from None
