"""Turn the rendered ``transform`` tasks into watcher execution: one dbt build, every task follows it.

Cosmos renders the project as in local mode (a task per model, per model's tests, per
multi-model test and per source, plus the docs task); :func:`follow_one_dbt_build` then

* adds the producer, ``dbt.dbt_build``, which runs freshness, build and docs in one process
  (upstream of the tasks of the project's roots, so the graph shows where results come from);
* turns every dbt task into its watcher-mode class (:mod:`operators.dbt_watcher`), following the
  dbt nodes it would have run in local mode, with trigger rule ``always``: it follows dbt, not
  the Airflow states of its upstream tasks, so no task waits for the scheduler to reach it;
* adds ``dbt_build_passed`` (an empty task, trigger rule ``none_failed``) after every dbt task, so
  the DAG run fails when any model, test or source did, although what dbt skipped ends *skipped*.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable
from typing import Any

from airflow.sdk import TaskGroup
from airflow.task.trigger_rule import TriggerRule

EXECUTION_MODE_ENV = "DBT_EXECUTION_MODE"
OUTCOME_TASK_ID = "dbt_build_passed"
#: The producer runs before anything else waiting for a worker (e.g. a retry running one model).
PRODUCER_PRIORITY_WEIGHT = 1000

#: Attributes of a rendered Cosmos task that say how to run dbt (project, profile, dbt, env).
_RUN_SETTINGS = (
    "project_dir",
    "profile_config",
    "partial_parse",
    "env",
    "vars",
    "cache_dir",
    "manifest_filepath",
    "invocation_mode",
    "dbt_executable_path",
    "install_deps",
    "copy_dbt_packages",
)


class DbtExecutionMode(enum.StrEnum):
    """How the ``transform`` DAG runs dbt (``DBT_EXECUTION_MODE``)."""

    #: One ``dbt build`` per run; each task follows its node (default).
    WATCHER = "watcher"
    #: One dbt invocation per task (Cosmos ``ExecutionMode.LOCAL``).
    LOCAL = "local"

    @property
    def test_behavior(self):
        """How Cosmos renders the tests: with their model (watcher), or as a task after it (local).

        In watcher mode every task waits in the triggerer, and Airflow 3.3's triggerer deserializes
        the whole DAG for each task it starts there, so the number of tasks counts twice (tasks x DAG
        size): one task per model and its tests, as ``dbt build`` runs them, halves it.
        """
        from cosmos.constants import TestBehavior

        return TestBehavior.BUILD if self is DbtExecutionMode.WATCHER else TestBehavior.AFTER_EACH

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> DbtExecutionMode:
        raw = ((os.environ if environ is None else environ).get(EXECUTION_MODE_ENV) or cls.WATCHER.value).strip()
        try:
            return cls(raw.lower())
        except ValueError:
            valid = ", ".join(mode.value for mode in cls)
            raise ValueError(f"{EXECUTION_MODE_ENV}={raw!r} is not an execution mode; use one of: {valid}") from None


def follow_one_dbt_build(
    group: TaskGroup, *, docs_task: Any | None, select: Iterable[str] = (), exclude: Iterable[str] = ()
):
    """Add the producer to ``group`` (a rendered ``DbtTaskGroup``) and make every dbt task follow it.

    ``docs_task`` (the docs operator, if any) is followed too: the producer generates and publishes
    the docs with its callback. ``select`` / ``exclude`` are the render config's. Returns the producer.
    """
    from cosmos.operators.local import AbstractDbtLocalBase

    from operators.dbt_watcher import FOLLOWING_OPERATORS, PRODUCER_TASK_ID, DbtBuildProducerOperator

    dag = group.dag
    dbt_tasks = [t for t in _tasks_in(group) if isinstance(t, AbstractDbtLocalBase)]
    if not dbt_tasks:
        raise ValueError(f"task group {group.group_id!r} has no dbt tasks to follow a build")
    clash = f"{group.group_id}.{PRODUCER_TASK_ID}"
    if clash in dag.task_dict or clash in dag.task_group_dict:
        raise ValueError(f"the dbt project has a node that renders as {clash!r}, the id of the dbt build task")
    sample = dbt_tasks[0]
    sources = [t.select for t in dbt_tasks if _node_id(t).startswith("source.")]
    producer = DbtBuildProducerOperator(
        task_id=PRODUCER_TASK_ID,
        task_group=group,
        dag=dag,
        select=" ".join(select) or None,
        exclude=" ".join(exclude) or None,
        freshness_sources=sources,
        docs_callback=docs_task.callback if docs_task is not None else None,
        docs_callback_args=dict(docs_task.callback_args) if docs_task is not None else None,
        emit_datasets=False,
        should_store_compiled_sql=False,
        priority_weight=PRODUCER_PRIORITY_WEIGHT,
        **{name: getattr(sample, name) for name in _RUN_SETTINGS},
    )
    graph_nodes = group.dbt_graph.filtered_nodes
    followers = [*dbt_tasks, *([docs_task] if docs_task is not None else [])]
    for task in dbt_tasks:
        if not task.upstream_task_ids:
            producer >> task
    outcome = _outcome_task(dag)
    for task in followers:
        task.__class__ = FOLLOWING_OPERATORS[type(task)]
        task >> outcome
    for task in followers:  # once every edge is in place: the triggers carry the upstream task ids
        nodes, resource = _followed_nodes(task, graph_nodes)
        task.follow(producer_task_id=producer.task_id, nodes=nodes, resource=resource)
    return producer


def _outcome_task(dag):
    from airflow.providers.standard.operators.empty import EmptyOperator

    return EmptyOperator(
        task_id=OUTCOME_TASK_ID,
        dag=dag,
        trigger_rule=TriggerRule.NONE_FAILED,
        doc_md="Fails (*upstream failed*) when any dbt task failed, so the run's state says so; it runs nothing.",
    )


def _tasks_in(group: TaskGroup) -> list[Any]:
    tasks = []
    for child in group.children.values():
        tasks.extend(_tasks_in(child) if isinstance(child, TaskGroup) else [child])
    return tasks


def _own_tests(task: Any, unique_id: str, graph_nodes: dict[str, Any]) -> list[str]:
    """The tests of one node: those that depend on it, less those rendered as their own task (excluded)."""
    excluded = set((task.exclude or "").split() if isinstance(task.exclude, str) else task.exclude or [])
    return sorted(
        uid
        for uid, node in graph_nodes.items()
        if uid.startswith("test.") and unique_id in node.depends_on and uid.split(".")[2] not in excluded
    )


def _node_id(task: Any) -> str:
    return ((getattr(task, "extra_context", None) or {}).get("dbt_node_config") or {}).get("unique_id") or ""


def _followed_nodes(task: Any, graph_nodes: dict[str, Any]) -> tuple[list[str], str]:
    """The dbt nodes a rendered task runs in local mode, and what to call them in its log."""
    from cosmos.operators.local import (
        DbtBuildLocalOperator,
        DbtDocsLocalOperator,
        DbtSourceLocalOperator,
        DbtTestLocalOperator,
    )

    from operators.dbt_watcher import DOCS_NODE

    if isinstance(task, DbtDocsLocalOperator):
        return [DOCS_NODE], "the docs"
    unique_id = _node_id(task)
    kind, _, name = unique_id.partition(".")
    name = name.partition(".")[2]
    if isinstance(task, DbtSourceLocalOperator):
        return [unique_id], f"the freshness of source {name}"
    if isinstance(task, DbtBuildLocalOperator):  # TestBehavior.BUILD: the node, then its tests
        return [unique_id, *_own_tests(task, unique_id, graph_nodes)], f"{kind} {name} and its tests"
    if isinstance(task, DbtTestLocalOperator) and kind != "test":
        return _own_tests(task, unique_id, graph_nodes), f"the tests of {name}"
    return [unique_id], f"{kind} {name.split('.')[0]}"
