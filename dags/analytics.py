"""
### Analytics maintenance

The jobs of the old worker's `analytics` queue: catalog metadata, materialized
views, query statistics and log cleanup, in the warehouse, through the `warehouse` connection and
its `database` circuit breaker. Every job writes its runs to `analytics_refresh_log`.

* **plan_jobs**: reads the configuration (Airflow Variable `analytics_config`, JSON) and decides
  which jobs are due; the others skip with the reason in their log.
* **plan_materialized_views** → **refresh_materialized_view** (one mapped task per view) →
  **check_materialized_views**: every materialized view of the configured schemas, a view that
  reads another after it, independent views in parallel within the pool's slots.
  `CONCURRENTLY` when the view is populated and has a usable unique index, a plain refresh
  otherwise; `lock_timeout`, a per-view advisory lock (a second refresh of the same view skips),
  `ANALYZE` after.
* **refresh_catalog**: tables, views, materialized views, partitioned tables (partitions rolled up)
  and foreign tables into `analytics_catalog`: columns, keys, comments, size, row count with its
  provenance (estimate / exact / unknown), last analyze and vacuum; vanished objects are marked
  dropped. Runs after the views so it sees them fresh.
* **collect_query_statistics**: top statements per window from `pg_stat_statements` as deltas that
  survive resets, in `analytics_query_statistics` (skipped, with the reason, without the extension).
* **clean_up_logs**: old rows of the log tables deleted in small batches.
* **notify_analytics_api**: tells the analytics API service (connection `analytics_api`) what was
  refreshed so it drops stale caches; a failed notification never fails the run.

**Data-aware**: the DAG also runs within seconds of an asset event through the alias
`dbt_models` (a model `transform` built). Such a run refreshes only the materialized views that
read a model that changed (directly or through views) and the views that read those, in
dependency order; every view refreshed emits an asset event through `materialized_views` (alerts
and reports that read it run next). The other jobs keep their clocks.

**Schedule**: each job runs when its own cron schedule (UTC) has fired since its last run
(defaults in `include/analytics/config.py`, listed in docs/task-registry.md). Change them at run
time in the Variable `analytics_config`, e.g. `{"schedule": {"catalog": "*/30 * * * *",
"log_cleanup": null}}` (null turns a job off). Trigger the DAG with `{"jobs": ["catalog"]}` to run
chosen jobs now whatever their schedule. **Configuration**: docs/analytics.md.

**When it fails**: `check_materialized_views` fails naming every view whose refresh failed and why
(the view's own task is failed too; views reading it are skipped); `refresh_catalog` and
`clean_up_logs` fail with the statement's error, recorded in `analytics_refresh_log`
(`status = 'failed'`, `error`). A warehouse outage opens the `database` breaker and the tasks wait
(*up for reschedule*) instead of failing. The analytics service being down only logs a warning.
"""

from __future__ import annotations

from airflow.sdk import AssetAlias, Param, task

from include.analytics.config import JOBS
from include.categories import platform_dag
from include.lineage.assets import DBT_MODELS, MATERIALIZED_VIEWS, clock_or_changes

with platform_dag(
    dag_id="analytics",
    category="analytics",
    schedule=clock_or_changes("*/15 * * * *", [DBT_MODELS]),
    doc_md=__doc__,
    tags=["catalog"],
    params={
        "jobs": Param(
            [],
            type="array",
            items={"type": "string", "enum": list(JOBS)},
            title="Jobs to run now",
            description="Run these jobs whatever their schedule (and only these). Empty: the jobs that are due.",
        ),
        "exact_counts": Param(
            [],
            type="array",
            items={"type": "string"},
            title="Exact row counts",
            description="schema.table names the catalog refresh counts exactly (count(*)) in this run.",
        ),
    },
):

    @task
    def plan_jobs(params: dict, triggering_asset_events=None) -> dict:
        """Decide which jobs are due and fix the run's configuration."""
        from include.analytics import tasks

        return tasks.plan_jobs(
            jobs=params["jobs"], exact_counts=params["exact_counts"], triggering_asset_events=triggering_asset_events
        )

    @task
    def plan_materialized_views(ti=None, run_id=None) -> list[dict]:
        """The materialized views to refresh, in dependency order."""
        from include.analytics import tasks

        return tasks.plan_materialized_views(ti=ti, run_id=run_id)

    @task(map_index_template="{{ view_label | default('') }}", outlets=[AssetAlias(MATERIALIZED_VIEWS)])
    def refresh_materialized_view(view: dict, ti=None, run_id=None, outlet_events=None) -> dict:
        """Refresh one materialized view (after the views it reads); an asset event when it refreshed."""
        from include.analytics import tasks

        return tasks.refresh_materialized_view(view, ti=ti, run_id=run_id, outlet_events=outlet_events)

    @task(trigger_rule="all_done")
    def check_materialized_views(ti=None, run_id=None) -> dict:
        """Fail naming every view that failed."""
        from include.analytics import tasks

        return tasks.check_materialized_views(ti=ti, run_id=run_id)

    @task(trigger_rule="all_done")
    def refresh_catalog(ti=None, run_id=None) -> dict:
        """Upsert the catalog metadata of the configured schemas."""
        from include.analytics import tasks

        return tasks.refresh_catalog(ti=ti, run_id=run_id)

    @task
    def collect_query_statistics(ti=None, run_id=None) -> dict:
        """Store this window's top statements from pg_stat_statements."""
        from include.analytics import tasks

        return tasks.collect_query_statistics(ti=ti, run_id=run_id)

    @task
    def clean_up_logs(ti=None, run_id=None) -> list[dict]:
        """Delete old rows of the log tables in batches."""
        from include.analytics import tasks

        return tasks.clean_up_logs(ti=ti, run_id=run_id)

    @task(trigger_rule="all_done")
    def notify_analytics_api(ti=None, run_id=None) -> dict:
        """Tell the analytics service what was refreshed."""
        from include.analytics import tasks

        return tasks.notify_analytics_api(ti=ti, run_id=run_id)

    plan = plan_jobs()
    views = plan_materialized_views()
    refreshed = refresh_materialized_view.expand(view=views)
    checked = check_materialized_views()
    catalog = refresh_catalog()
    plan >> views
    refreshed >> checked  # a leaf, so that a failed view fails the DAG run
    refreshed >> catalog >> notify_analytics_api()
    plan >> [collect_query_statistics(), clean_up_logs()]
