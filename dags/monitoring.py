"""
### Monitoring

Watches the platform itself, the job of the old worker's `monitoring` queue (concurrency 1).

* **apply_schema_migrations**: brings the platform tables up to date (a no-op when they are).
* **check_health**: reachability and latency of the warehouse and Redis, one row per check in
  `health_checks` and a `platform.health.*` metric each.

**Schedule**: every 5 minutes. **Pool**: `monitoring` (1 slot).

**When it fails**: the task log names every failed check and its error; the rows in
`health_checks` (`status = 'failed'`) keep the history. A warehouse outage opens the `database`
circuit breaker: the task then waits (state *up for reschedule*) instead of failing; see
`python -m include breakers status`.
"""

from __future__ import annotations

from airflow.sdk import task

from include.categories import platform_dag

with platform_dag(
    dag_id="monitoring",
    category="monitoring",
    schedule="*/5 * * * *",
    doc_md=__doc__,
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
    def check_health(**context) -> list[dict]:
        """Check the warehouse and Redis and record the results."""
        from include.monitoring.health import run_health_checks

        return run_health_checks(dag_run_id=context["run_id"])

    apply_schema_migrations() >> check_health()
