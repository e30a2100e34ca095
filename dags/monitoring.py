"""
### Monitoring

Watches the platform itself, the job of the old worker's `monitoring` queue.

* **apply_schema_migrations**: brings the platform tables up to date (a no-op when they are).
* **check_health**: reachability and latency of the warehouse, Redis, the SMTP server and the
  Slack and webhook endpoints, one row per check in `health_checks` and a `platform.health.*`
  metric each; also publishes every circuit breaker's state as the `platform.breaker.state` gauge.
  A channel whose connection (`smtp_default`, `slack_alerts`, `alert_webhook`) is not defined is
  skipped.
* **collect_system_metrics**: CPU, memory, disk and load of the worker into `worker_metrics`.
* **compute_task_statistics**: runs, success rate, p50 / p95 duration and retries per DAG and
  task over the last `task_statistics_window_hours`, read from Airflow's REST API (connection
  `airflow_api`) into `task_statistics`.
* **cleanup_expired_rows**: deletes rows older than their retention (Params, in days).

The four tasks after the migrations are independent: one failing never stops the others.

**When it fails**: *check_health* fails without retrying when a check fails; its log names every
failed check and its error, and `health_checks` (`status = 'failed'`) keeps the history (the
next run checks again). *compute_task_statistics* fails when the api-server
refuses the `airflow_api` connection's credentials. A warehouse outage opens the `database`
circuit breaker: tasks then wait (state *up for reschedule*) instead of failing; see the
*Circuit breakers* page or `python -m include breakers status`.
"""

from __future__ import annotations

from airflow.sdk import Param, task

from include.categories import platform_dag

with platform_dag(
    dag_id="monitoring",
    category="monitoring",
    schedule="*/5 * * * *",
    doc_md=__doc__,
    params={
        "task_statistics_window_hours": Param(
            24, type="number", exclusiveMinimum=0, description="Window of the task statistics, in hours."
        ),
        "health_checks_retention_days": Param(30, type="integer", minimum=1, description="Keep health checks."),
        "worker_metrics_retention_days": Param(30, type="integer", minimum=1, description="Keep worker metrics."),
        "task_statistics_retention_days": Param(90, type="integer", minimum=1, description="Keep task statistics."),
    },
):

    @task
    def apply_schema_migrations() -> list[int]:
        """Apply pending platform schema migrations to the warehouse."""
        from hooks.warehouse import WarehouseHook
        from include.migrations import apply_migrations

        conn = WarehouseHook().get_conn()
        try:
            return apply_migrations(conn)
        finally:
            conn.close()

    @task
    def check_health(run_id=None) -> list[dict]:
        """Check every dependency, record the results and publish breaker states."""
        from include.monitoring.health import run_health_checks

        return run_health_checks(dag_run_id=run_id)

    @task
    def collect_system_metrics() -> dict:
        """Record CPU, memory, disk and load of this worker."""
        from include.monitoring.system import collect_system_metrics

        return collect_system_metrics()

    @task
    def compute_task_statistics(params: dict, data_interval_end=None, dag_run=None) -> list[dict]:
        """Statistics of the window ending at this run's data interval end (recomputed on retry)."""
        from include.monitoring.task_stats import compute_task_statistics, window_end_of

        window_end = window_end_of(data_interval_end, dag_run.run_after)
        return compute_task_statistics(window_end, float(params["task_statistics_window_hours"]))

    @task
    def cleanup_expired_rows(params: dict) -> dict[str, int]:
        """Delete monitoring rows older than their retention."""
        from include.monitoring.retention import cleanup

        return cleanup(
            {
                "health_checks": params["health_checks_retention_days"],
                "worker_metrics": params["worker_metrics_retention_days"],
                "task_statistics": params["task_statistics_retention_days"],
            }
        )

    apply_schema_migrations() >> [
        check_health(),
        collect_system_metrics(),
        compute_task_statistics(),
        cleanup_expired_rows(),
    ]
