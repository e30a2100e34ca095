"""The alerts DAG's task bodies (kept here so the DAG file stays a thin declaration)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)


def evaluation_url(dag_id: str, run_id: str, task_id: str, map_index: int | None) -> str:
    """Link to one evaluation task instance in the Airflow UI."""
    from include.alerts.settings import airflow_base_url

    mapped = f"/mapped/{map_index}" if map_index is not None and map_index >= 0 else ""
    return f"{airflow_base_url()}/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/{task_id}{mapped}"


def create_alert_from_params(params: Mapping[str, Any]) -> dict[str, Any] | None:
    """Create the catalog threshold alert the trigger form asks for (``create_alert`` != none)."""
    from hooks.warehouse import WarehouseHook
    from include.alerts.builder import build_catalog_alert, channels_from_options, create_catalog_alert

    kind = params.get("create_alert") or "none"
    if kind == "none":
        log.info("no alert to create")
        return None
    hook = WarehouseHook(application_name="alerts-builder")
    options = {
        "severity": params.get("severity"),
        "owner": params.get("owner"),
        "consecutive_checks": params.get("consecutive_checks"),
        "channels": channels_from_options(
            slack=bool(params.get("notify_slack")),
            emails=params.get("notify_emails") or [],
            webhook=bool(params.get("notify_webhook")),
        ),
    }
    with hook.transaction(statement_timeout=30) as conn:
        definition = build_catalog_alert(
            conn,
            kind,
            params.get("table") or "",
            name=params.get("alert_name"),
            drop_percent=params.get("drop_percent"),
            timestamp_column=params.get("timestamp_column"),
            max_age=params.get("max_age"),
            options=options,
            source="trigger form",
        )
    alert_id = create_catalog_alert(hook, definition)
    log.info("created alert %s (id %s): %s", definition.name, alert_id, definition.description)
    return {"id": alert_id, "name": definition.name, "sql": definition.sql, "threshold": definition.threshold}


def plan(
    *,
    run_id: str,
    only_alerts: Sequence[str],
    batch_size: int,
    slots: int,
    triggering_asset_events: Mapping[Any, Any] | None,
) -> list[list[int]]:
    """Batches of the alerts this run evaluates, for ``slots`` evaluation tasks at once.

    A run triggered by asset events evaluates the alerts (``schedule`` on_change or
    clock_and_change) that read a relation that changed, whatever their check interval; any
    other run the due alerts on the clock (``clock`` or clock_and_change), or the alerts the
    trigger form names (``only_alerts``).
    """
    from hooks.warehouse import WarehouseHook
    from include.alerts.evaluate import affected_alert_ids, due_alert_ids, plan_batches
    from include.lineage.triggers import changed, log_changes, relation_changes

    names = list(only_alerts or [])
    hook = WarehouseHook(application_name="alerts-plan")
    changes = relation_changes(triggering_asset_events)
    log_changes(log, changes, "alerts")
    if changes and not names:
        ids = affected_alert_ids(hook, run_id, sorted(changed(changes)))
        log.info("%d alerts read what changed", len(ids))
    else:
        ids = due_alert_ids(hook, run_id, names)
        log.info("%d alerts due", len(ids))
    batches = plan_batches(ids, batch_size, slots=slots)
    log.info("%d alerts to evaluate, in %d batches", len(ids), len(batches))
    return batches


def evaluate(
    alert_ids: list[int],
    *,
    ti: Any,
    run_id: str,
    run_type: Any,
    dry_run: bool,
    triggering_asset_events: Mapping[Any, Any] | None,
) -> dict[str, Any]:
    """Evaluate one batch; the messages link to this task instance (``ti``); the events say why it ran."""
    from include.alerts.evaluate import EvaluationContext, evaluate_alerts
    from include.lineage.triggers import relation_changes

    url = evaluation_url(ti.dag_id, run_id, ti.task_id, getattr(ti, "map_index", None))
    changes = relation_changes(triggering_asset_events)
    evaluation = EvaluationContext(
        run_id=run_id,
        url=url,
        dry_run=dry_run,
        trigger=run_trigger(run_type, bool(changes)),
        changes=tuple(changes),
    )
    return evaluate_alerts(alert_ids, evaluation).as_dict()


def deliver_notifications() -> dict[str, Any]:
    """Send the pending notifications; fail (without retrying) when some failed for good in this round.

    Every other notification is still delivered first; the owners were told by the outbox, and the
    failure tells the platform's channels once (the failed rows are not tried again).
    """
    from airflow.sdk.exceptions import AirflowFailException

    from include.alerts.outbox import deliver_pending

    summary = deliver_pending()
    if summary.permanent:
        raise AirflowFailException(
            f"{len(summary.permanent)} notification(s) failed for good (not retried; their owners are told):\n"
            + "\n".join(summary.permanent)
        )
    return summary.as_dict()


def run_trigger(run_type: Any, changed: bool) -> str:
    """``change`` (asset events), ``clock`` (a scheduled run) or ``manual`` (triggered by a person or the API)."""
    run_type = getattr(run_type, "value", run_type)
    if changed or run_type == "asset_triggered":
        return "change"
    return "clock" if run_type in ("scheduled", "backfill") else "manual"


def report_definition_errors(report: Mapping[str, Any]) -> None:
    """Fail without retrying when the sync found new definition errors; known ones only warn."""
    from airflow.sdk.exceptions import AirflowFailException

    errors, new = report.get("errors") or [], report.get("new_errors") or []
    if new:
        listed = "\n".join(f"{'NEW ' if e in new else ''}{e}" for e in errors)
        raise AirflowFailException(f"{len(new)} new alert definition error(s) ({len(errors)} in all):\n{listed}")
    if errors:
        log.warning("%d alert definition error(s), reported before:\n%s", len(errors), "\n".join(errors))


def fail_for_unevaluated_batches() -> None:
    """The ``check_evaluation`` task, run only when a batch (or the planning) failed: fail the run."""
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(
        "alert evaluation did not complete: a batch (or the planning) failed, so some alerts were not checked "
        "in this run; see the failed evaluate_batch / plan_batches task for why (the warehouse did not answer, "
        "or the reader connection was refused)"
    )
