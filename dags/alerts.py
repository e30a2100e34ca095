"""
### Alerts

SQL threshold alerts with state and a notification outbox: the job of the old worker's `alerts`
queue. Definitions live in `analytics_alerts`; alerts kept as code in
`include/alerts/definitions/*.yaml` are synced into it on every run.

* **sync_definitions**: validates the YAML files against `include/alerts/alert.schema.json` and
  creates, updates or disables alerts; a bad file or alert is reported by file, alert and field
  and skipped, the others still sync.
* **create_threshold_alert**: when the trigger form asks for it, creates a threshold alert on a
  catalog object without SQL (row count drop in %, or freshness of a timestamp column).
* **plan_batches** / **evaluate_batch**: the alerts of this run are evaluated in parallel batches (one
  mapped task per batch, as many at a time as the `alerts` pool has slots). Each alert's SQL runs on the
  least-privilege reader connection `warehouse_reader` (refused if that role is privileged), is
  described on the server first (one query returning rows; `COPY`, `DO`... never run), and runs in
  a READ ONLY transaction with its statement timeout, through the `database` circuit breaker. States
  unknown / ok / triggered / error, with consecutive checks, rearm, mute and recovery; every
  check is a row in `analytics_alert_events`; every notifying transition writes one pending row
  per channel in `analytics_alert_notifications`.
* **deliver_notifications**: sends pending notifications (Slack, email, signed webhook) through
  the delivery layer (`plugins/delivery`: the `external_api` breaker of each server); the worker
  that sent records the outcome, retrying until the warehouse answers; transient failures stay
  pending with backoff; nothing is sent twice. A permanent failure (a connection that does not
  exist, a refused recipient, a 4xx answer) is not retried: the alert's owner is told once and the
  task fails after delivering the rest, naming it.
* **purge_history**: drops events older than each alert's `log_retention_days`.
* **report_definition_errors**: fails (without retrying) when a definition error appears, so the
  failure callback tells the platform channels once; errors already reported only log a warning.
* **check_evaluation**: fails when a batch (or the planning) failed, so that a run whose alerts
  were not all checked never ends as a success; skipped otherwise.

**Data-aware**: besides its clock, the DAG runs within seconds of an asset event through the
aliases `dbt_models` (a model `transform` built) and `materialized_views` (a view `analytics`
refreshed). Such a run evaluates only the alerts that read a relation that changed (found from
their SQL by `sync_definitions`, or declared: `reads`) and whose `schedule` is `on_change` or
`clock_and_change`; the triggering events are in the task log and in
`analytics_alert_events.triggered_by`. A clock run evaluates the alerts whose `schedule` is
`clock` or `clock_and_change` and whose own `check_interval` has passed. Trigger with the form
(Params) to evaluate chosen alerts now, to preview a run (`dry_run`), or to create a catalog
threshold alert.

**When it fails**: a definition error names the file, alert and field (task log of
`sync_definitions`, and `analytics_refresh_log` job `alerts.sync_definitions`). An alert whose SQL
fails is not a task failure (a bad query, a privilege it lacks, a server limit, a query that ends
its own session): it goes to state `error`, its owner is told once, and
`analytics_alerts.last_error` says why; the batch goes on. A failed *evaluate_batch* (and so
*check_evaluation*) means a warehouse that does not answer (checked with a fresh connection) or a
reader connection that is missing or privileged (the error names it; see docs/security.md).
A warehouse outage opens the `database` breaker and a
Slack/SMTP/webhook outage the `external_api` breaker of that host: tasks wait (*up for
reschedule*) or leave notifications pending; see `python -m include breakers status` and
`python -m include alerts outbox`. A failed *deliver_notifications* names the notifications that
failed for good (fix the channel or connection it names; `python -m include alerts validate`
checks every channel's connection). What each fault leads to: docs/delivery.md.
"""

from __future__ import annotations

from airflow.sdk import Param, task

from include.categories import platform_dag
from include.lineage.assets import RELATION_ALIASES, clock_or_changes

with platform_dag(
    dag_id="alerts",
    category="alerts",
    schedule=clock_or_changes("*/5 * * * *", RELATION_ALIASES),
    doc_md=__doc__,
    params={
        "only_alerts": Param(
            [],
            type="array",
            items={"type": "string"},
            title="Evaluate only these alerts",
            description="Alert names to evaluate now, whatever their check interval. Empty: every due alert.",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Evaluate and record events and rendered notifications, but change no state and send nothing.",
        ),
        "batch_size": Param(
            100,
            type="integer",
            minimum=1,
            maximum=1000,
            title="Alerts per evaluation task",
            description="At most this many alerts per mapped evaluation task (smaller batches, down to a "
            "minimum, when that keeps every slot of the alerts pool busy).",
        ),
        "create_alert": Param(
            "none",
            enum=["none", "row_count_drop", "freshness"],
            title="Create a threshold alert",
            description="Create an alert on a catalog object without writing SQL before evaluating.",
        ),
        "table": Param(None, type=["null", "string"], title="Table (schema.table)", description="For a new alert."),
        "drop_percent": Param(
            20, type="number", exclusiveMinimum=0, title="Row count drop (%)", description="For row_count_drop."
        ),
        "timestamp_column": Param(
            None, type=["null", "string"], title="Timestamp column", description="For freshness."
        ),
        "max_age": Param(
            "2h",
            type="string",
            pattern=r"^\s*[0-9]+(\.[0-9]+)?\s*(s|m|h|d)\s*$",
            title="Maximum age",
            description="For freshness, e.g. 90m, 2h, 1d.",
        ),
        "alert_name": Param(None, type=["null", "string"], title="Alert name", description="Default: derived."),
        "severity": Param("warning", enum=["info", "warning", "critical"], title="Severity"),
        "owner": Param(None, type=["null", "string"], title="Owner (email)", description="Told about errors."),
        "notify_slack": Param(True, type="boolean", title="Notify Slack (slack_alerts)"),
        "notify_emails": Param([], type="array", items={"type": "string"}, title="Notify these email addresses"),
        "notify_webhook": Param(False, type="boolean", title="Notify the webhook (alert_webhook)"),
        "consecutive_checks": Param(1, type="integer", minimum=1, maximum=100, title="Consecutive checks to fire"),
    },
):

    @task
    def sync_definitions(run_id=None) -> dict:
        """Sync the YAML alert definitions into analytics_alerts."""
        from include.alerts.sync import sync_definitions as sync

        return sync(dag_run_id=run_id).as_dict()

    @task
    def create_threshold_alert(params: dict) -> dict | None:
        """Create the catalog threshold alert requested in the trigger form, if any."""
        from include.alerts.tasks import create_alert_from_params

        return create_alert_from_params(params)

    @task(trigger_rule="all_done")
    def plan_batches(params: dict, run_id=None, triggering_asset_events=None) -> list[list[int]]:
        """Split the due alerts into batches for the mapped evaluation."""
        from include.alerts.tasks import plan
        from include.categories import get_category

        return plan(
            run_id=run_id,
            only_alerts=params["only_alerts"],
            batch_size=params["batch_size"],
            slots=get_category("alerts").pool_slots,
            triggering_asset_events=triggering_asset_events,
        )

    @task
    def evaluate_batch(alert_ids: list[int], params: dict, ti=None, dag_run=None, triggering_asset_events=None) -> dict:
        """Evaluate one batch of alerts and record states, events and notifications."""
        from include.alerts.tasks import evaluate

        return evaluate(
            alert_ids,
            ti=ti,
            run_id=dag_run.run_id,
            run_type=dag_run.run_type,
            dry_run=params["dry_run"],
            triggering_asset_events=triggering_asset_events,
        )

    @task(trigger_rule="all_done")
    def deliver_notifications() -> dict:
        """Send the pending notifications (Slack, email, webhook)."""
        from include.alerts.tasks import deliver_notifications as deliver

        return deliver()

    @task(trigger_rule="all_done")
    def purge_history() -> int:
        """Drop alert events past their retention."""
        from include.alerts.outbox import purge_history as purge

        return purge()

    @task(trigger_rule="all_done")
    def report_definition_errors(report: dict) -> None:
        """Fail (no retry) when a definition error is new, so the failure callback tells the platform once."""
        from include.alerts.tasks import report_definition_errors as report_errors

        report_errors(report)

    @task(trigger_rule="one_failed")
    def check_evaluation() -> None:
        """Fail the run when an evaluation batch failed: its alerts were not checked."""
        from include.alerts.tasks import fail_for_unevaluated_batches

        fail_for_unevaluated_batches()

    synced = sync_definitions()
    batches = plan_batches()
    [synced, create_threshold_alert()] >> batches
    delivered = deliver_notifications()
    evaluated = evaluate_batch.expand(alert_ids=batches)
    evaluated >> delivered
    evaluated >> check_evaluation()
    delivered >> [purge_history(), report_definition_errors(synced)]
