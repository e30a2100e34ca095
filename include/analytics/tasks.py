"""Task bodies of the ``analytics`` DAG: the run's input in, job logic out.

``plan_jobs`` gets the trigger's Params and the run's triggering asset events, reads the
configuration once per run and decides which jobs are due; every other task reads that plan from
XCom (through its task instance ``ti``), skips when its job is not due, and calls the job's module.
The DAG passes each value by name; nothing here reads the Airflow context or runs at parse time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from include.analytics.config import (
    JOBS,
    AnalyticsConfig,
    ConfigError,
    decide_job,
    decide_job_for_change,
    load_config,
    requested_jobs,
    restore_config,
)

log = logging.getLogger(__name__)

PLAN_TASK = "plan_jobs"
VIEW_PLAN_TASK = "plan_materialized_views"
#: Task states after which a view's refresh task will not run again in this DAG run.
_NOT_REFRESHED_STATES = {"failed", "upstream_failed", "skipped", "removed"}


def _warehouse():
    from hooks.warehouse import WarehouseHook

    return WarehouseHook(application_name="analytics-platform:analytics")


def _skip(message: str):
    from airflow.sdk.exceptions import AirflowSkipException

    return AirflowSkipException(message)


def _fail(message: str):
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(message)


# ----------------------------------------------------------------------------- plan


def _exact_counts_param(value: Any) -> list[str]:
    if value in (None, "", []):
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and "." in v for v in value):
        raise ConfigError(f"run parameter 'exact_counts' must be a list of 'schema.table' names, got {value!r}")
    return list(value)


def plan_jobs(
    *, jobs: Sequence[str], exact_counts: Sequence[str], triggering_asset_events: Mapping[Any, Any] | None
) -> dict[str, Any]:
    """Load the configuration and decide which jobs run now (see ``config.decide_job``).

    ``jobs`` and ``exact_counts`` are the trigger's Params; a run that asset events triggered
    refreshes what reads the relations that changed. A configuration mistake fails the task at
    once (no retries): a retry would read the same value.
    """
    try:
        return _plan_jobs(jobs, exact_counts, triggering_asset_events)
    except ConfigError as error:
        raise _fail(str(error)) from None


def _plan_jobs(
    jobs_param: Sequence[str], exact_counts_param: Sequence[str], events: Mapping[Any, Any] | None
) -> dict[str, Any]:
    from include.lineage.triggers import changed, log_changes, relation_changes
    from include.sql import load_sql

    config = load_config()
    requested = requested_jobs(jobs_param)
    exact_counts = _exact_counts_param(exact_counts_param)
    changes = [] if requested else relation_changes(events)
    log_changes(log, changes, "analytics")
    changed_relations = sorted(changed(changes))
    with _warehouse().transaction() as conn:
        rows = conn.execute(load_sql("refresh_log/last_started.sql"), {"jobs": list(JOBS)}).fetchall()
    now = rows[0][0]
    last = {job: started for _, job, started in rows}
    jobs = {}
    for job in JOBS:
        if changes:
            decision = decide_job_for_change(job, config.schedule.get(job), changed_relations)
        else:
            decision = decide_job(job, config.schedule.get(job), now, last.get(job), requested)
        jobs[job] = {"due": decision.due, "reason": decision.reason}
        log.info("%-18s %s: %s", job, "RUNS" if decision.due else "skips", decision.reason)
    return {
        "config": config.as_dict(),
        "jobs": jobs,
        "exact_counts": exact_counts,
        "planned_at": now.isoformat(),
        # a run for a data change refreshes only the views that read these (None: every view in scope)
        "changed": changed_relations if changes else None,
    }


def _plan(ti: Any) -> dict[str, Any]:
    plan = ti.xcom_pull(task_ids=PLAN_TASK, map_indexes=-1)
    if not plan:
        raise _skip(f"{PLAN_TASK} did not produce a plan for this run (see its log)")
    return plan


def _config_for(job: str, ti: Any) -> tuple[AnalyticsConfig, dict[str, Any]]:
    """The run's configuration, or a skip when ``job`` is not due in this run."""
    plan = _plan(ti)
    decision = plan["jobs"][job]
    if not decision["due"]:
        raise _skip(f"{job}: {decision['reason']}")
    return restore_config(plan["config"]), plan


# ----------------------------------------------------------------------------- jobs


def refresh_catalog(*, ti: Any, run_id: str) -> dict[str, Any]:
    from include.analytics.catalog import refresh_catalog as refresh

    config, plan = _config_for("catalog", ti)
    result = refresh(_warehouse(), config.catalog, exact_counts=plan.get("exact_counts") or (), dag_run_id=run_id)
    return result.as_dict()


def plan_materialized_views(*, ti: Any, run_id: str) -> list[dict[str, Any]]:
    from include.analytics import refresh_log
    from include.analytics.mviews import JOB, plan_views

    config, plan = _config_for("materialized_views", ti)
    hook = _warehouse()
    changed = plan.get("changed")
    views = plan_views(hook, config.materialized_views, changed)
    if not views and changed is not None:
        raise _skip(f"no materialized view in scope reads what changed ({', '.join(changed)})")
    if not views:
        with hook.transaction() as conn:
            refresh_log.record(
                conn,
                job=JOB,
                target=None,
                status="skipped",
                dag_run_id=run_id,
                error="no materialized views in the configured schemas",
            )
        raise _skip("no materialized views in the configured schemas")
    levels = max(v.level for v in views) + 1
    log.info("%d materialized views in %d dependency level(s):", len(views), levels)
    for view in views:
        log.info("  level %d  %s%s", view.level, view.key, f" (after {', '.join(view.reads)})" if view.reads else "")
    return [v.as_dict() for v in views]


def refresh_materialized_view(view: dict[str, Any], *, ti: Any, run_id: str, outlet_events: Any) -> dict[str, Any]:
    """Refresh one view once the views it reads are done; fail (no retry) when its refresh fails.

    A refresh that succeeded is an asset event through ``outlet_events`` (the task's outlets).
    """
    from include.analytics.mviews import PlannedView, refresh_view

    planned = PlannedView.from_dict(view)
    _label_map_index(planned.key)
    config, _ = _config_for("materialized_views", ti)
    settings = config.materialized_views
    _wait_for_sources(planned, ti, run_id, settings.dependency_poll_seconds, settings.dependency_wait_seconds)
    hook = _warehouse()
    outcome = refresh_view(hook, planned.schema, planned.name, settings, dag_run_id=run_id)
    if outcome.status == "failed":
        message = f"refresh of materialized view {planned.key} failed: {outcome.reason}"
        if outcome.retryable:
            raise RuntimeError(message + f" ({outcome.sqlstate}: worth a retry)")
        raise _fail(message)
    if outcome.status == "success":
        _announce_refresh(hook, planned, outcome, outlet_events)
    return outcome.as_dict()


def _announce_refresh(hook: Any, view: Any, outcome: Any, outlet_events: Any) -> None:
    """A refreshed view is an asset event (alias ``materialized_views``) and an OpenLineage output."""
    from include.lineage.assets import MATERIALIZED_VIEWS, Relation, emit, warehouse_location
    from include.lineage.openlineage import report_relations

    uri = warehouse_location().relation_uri(Relation(view.schema, view.name))
    emit(outlet_events, MATERIALIZED_VIEWS, {uri: {"mode": outcome.mode, "refresh_ms": outcome.refresh_ms}})
    report_relations(hook, read=view.sources, written=[view.key])
    log.info("asset event for %s: %s", view.key, uri)


def _label_map_index(label: str) -> None:
    """Name this mapped task instance after its view in the UI (``map_index_template``)."""
    from airflow.sdk import get_current_context

    get_current_context()["view_label"] = label


def _wait_for_sources(view: Any, ti: Any, run_id: str, poll_seconds: float, wait_seconds: float) -> None:
    """Return when every view ``view`` reads has been refreshed in this run; else skip, wait or fail.

    Waiting is a reschedule: the task gives its worker and pool slot back and comes back after
    ``poll_seconds``, without using a retry.
    """
    if not view.reads_indexes:
        return
    from airflow.sdk.exceptions import AirflowRescheduleException

    states = ti.get_task_states(dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[run_id]).get(run_id, {})
    pending, not_refreshed = [], []
    for index, source in zip(view.reads_indexes, view.reads, strict=True):
        state = states.get(f"{ti.task_id}_{index}")
        if state == "success":
            continue
        if state in _NOT_REFRESHED_STATES:
            not_refreshed.append(f"{source} ({state})")
        else:
            pending.append(source)
    if not_refreshed:
        reason = f"not refreshed: it reads {', '.join(not_refreshed)}, which was not refreshed in this run"
        _record_view_skip(view.key, reason, run_id)
        raise _skip(reason)
    if pending:
        first_try = ti.get_first_reschedule_date(ti.get_template_context()) or datetime.now(UTC)
        waited = (datetime.now(UTC) - first_try).total_seconds()
        if waited > wait_seconds:
            raise _fail(f"{view.key}: waited {waited:.0f}s for {', '.join(pending)} to be refreshed; giving up")
        log.info("%s waits for %s (checking again in %.0fs)", view.key, ", ".join(pending), poll_seconds)
        raise AirflowRescheduleException(datetime.now(UTC) + timedelta(seconds=poll_seconds))


def _record_view_skip(view: str, reason: str, dag_run_id: str) -> None:
    from include.analytics import refresh_log
    from include.analytics.mviews import JOB

    with _warehouse().transaction() as conn:
        refresh_log.record(
            conn,
            job=JOB,
            target=view,
            status="skipped",
            dag_run_id=dag_run_id,
            details={"upstream_failed": True},
            error=reason,
        )


def check_materialized_views(*, ti: Any, run_id: str) -> dict[str, Any]:
    """Fail naming every view that failed (and every view left out because of it), after all ran."""
    from include.analytics import refresh_log
    from include.analytics.mviews import JOB, PlannedView, summarize

    _config_for("materialized_views", ti)
    planned_dicts = ti.xcom_pull(task_ids=VIEW_PLAN_TASK, map_indexes=-1)
    if not planned_dicts:
        raise _skip("no materialized views were planned in this run")
    planned = [PlannedView.from_dict(v) for v in planned_dicts]
    with _warehouse().transaction() as conn:
        items = refresh_log.run_items(conn, dag_run_id=run_id, job=JOB)
    failed, not_refreshed = summarize(planned, items)
    counts: dict[str, int] = {}
    for view in planned:
        status = (items.get(view.key) or {}).get("status", "missing")
        counts[status] = counts.get(status, 0) + 1
    log.info("materialized views: %s", ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    for view in planned:
        row = items.get(view.key) or {}
        log.info(
            "  %-40s %-8s %-13s %s",
            view.key,
            row.get("status", "missing"),
            (row.get("details") or {}).get("mode", "-"),
            f"{row['duration_ms']} ms" if row.get("duration_ms") is not None else "",
        )
    if failed or not_refreshed:
        message = f"{len(failed)} of {len(planned)} materialized views failed"
        if failed:
            message += ": " + "; ".join(failed)
        if not_refreshed:
            message += ". Not refreshed: " + "; ".join(not_refreshed)
        raise _fail(message)
    return counts


def collect_query_statistics(*, ti: Any, run_id: str) -> dict[str, Any]:
    from include.analytics.query_stats import collect_query_statistics as collect

    config, _ = _config_for("query_statistics", ti)
    return collect(_warehouse(), config.query_statistics, dag_run_id=run_id).as_dict()


def clean_up_logs(*, ti: Any, run_id: str) -> list[dict[str, Any]]:
    from include.analytics.cleanup import LogCleanupError, clean_logs

    config, _ = _config_for("log_cleanup", ti)
    try:
        results = clean_logs(_warehouse(), config.log_cleanup, dag_run_id=run_id)
    except LogCleanupError as error:
        if error.retryable:
            raise
        raise _fail(str(error)) from None
    return [r.as_dict() for r in results]


def notify_analytics_api(*, ti: Any, run_id: str) -> dict[str, Any]:
    from include.analytics.notify import notify_analytics_api as notify

    plan = _plan(ti)
    if not (plan["jobs"]["catalog"]["due"] or plan["jobs"]["materialized_views"]["due"]):
        raise _skip("neither the catalog nor the materialized views were refreshed in this run")
    config = restore_config(plan["config"])
    return notify(_warehouse(), config.analytics_api, dag_run_id=run_id).as_dict()
