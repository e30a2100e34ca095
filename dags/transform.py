"""
### Transform (dbt)

Builds the dbt project with [Cosmos](https://astronomer.github.io/astronomer-cosmos/), the job of
the old worker's `dbt` queue: one dbt build per run, and every model still an Airflow task.

How dbt runs is `DBT_EXECUTION_MODE` (docs/transform.md, *Execution modes*):

* **watcher** (default): **`dbt.dbt_build`** runs what the command line would, in one worker:
  `dbt source freshness` (the models of a stale source are left out), `dbt build` with the
  profile's `threads`, and `dbt docs generate` (published under **Browse -> dbt Docs**). Each
  model with its tests (**`dbt.<model>_model_build`**), each test on two models and each source
  (**`dbt.<source>_<table>_source`**) is its own task: it waits in the triggerer (no worker, no
  pool slot) and ends as dbt reported, with dbt's lines for it in its log; what dbt skipped ends
  *skipped*, naming the task that stopped it. **`dbt_build_passed`** fails the run when any dbt
  task failed.
* **local**: `dbt.<model>.run` (`dbt run`) then `dbt.<model>.test` (`dbt test`) per model and a
  task per source, one dbt invocation per task, one at a time, then `generate_docs`.

The project is `DBT_PROJECT_PATH` (default: the bundled `dbt/`); its profile is the Airflow
connection `warehouse`, or the `profiles.yml` in `DBT_PROFILES_DIR` if that is set. The graph
comes from the manifest built by `make dbt-manifest` (falling back to `dbt ls`, with a warning in
the DAG processor log, when it is missing).

**When it fails**: open the failed task's log: dbt's own output names the failing model, test or
source. A stale source means its loader is late: reload it, then clear the source task (with its
downstream tasks). A failing test or model means bad data or SQL: fix it, then clear that task
with its downstream tasks; each runs dbt for its own node alone, in dependency order, without
rebuilding the project. If the warehouse is unreachable, three failed dbt invocations open the
`dbt` circuit breaker and the build waits (state *up for reschedule*) instead of failing; see
`python -m include breakers status`.
"""

from __future__ import annotations

from cosmos import DbtTaskGroup, ExecutionConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, SourceRenderingBehavior

from include.categories import platform_dag
from include.transform.profile import profile_config
from include.transform.project import DbtProject, dbt_executable, local_manifest_project_config
from include.transform.watcher import DbtExecutionMode, follow_one_dbt_build
from operators.guarded_dbt import GuardedDbtDocsLocalOperator, guard_dbt_tasks

project = DbtProject.from_env()
execution_mode = DbtExecutionMode.from_env()
profile = profile_config(project)

with platform_dag(
    dag_id="transform",
    category="dbt",
    schedule="15 * * * *",
    doc_md=__doc__,
    tags=["dbt"],
    max_active_tasks=1,
) as dag:
    dbt_project = DbtTaskGroup(
        group_id="dbt",
        project_config=local_manifest_project_config(project),
        profile_config=profile,
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.DBT_RUNNER,
            dbt_executable_path=dbt_executable(),
        ),
        render_config=RenderConfig(
            load_method=project.load_mode(),
            test_behavior=execution_mode.test_behavior,
            source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
            should_detach_multiple_parents_tests=True,
        ),
    )

    generate_docs = GuardedDbtDocsLocalOperator(
        task_id="generate_docs",
        project_dir=str(project.project_path),
        profile_config=profile,
        invocation_mode=InvocationMode.DBT_RUNNER,
        dbt_executable_path=dbt_executable(),
        install_deps=project.needs_dbt_deps,
        emit_datasets=False,
        callback="include.transform.docs.publish_docs",
        callback_args={"slug": project.docs_slug},
    )

    dbt_project >> generate_docs
    guard_dbt_tasks(dag.tasks)
    if execution_mode is DbtExecutionMode.WATCHER:
        follow_one_dbt_build(dbt_project, docs_task=generate_docs)
