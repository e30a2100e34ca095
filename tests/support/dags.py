"""Run a project DAG end to end with ``dag.test()`` and report what happened to each task."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from devstack.airflow_env import PROJECT_ROOT


@dataclass(frozen=True)
class DagRunResult:
    dag_id: str
    run_id: str
    state: str
    #: task id (``task_id[map_index]`` for mapped tasks) -> final state
    task_states: dict[str, str | None]
    try_numbers: dict[str, int]

    def failed_tasks(self) -> list[str]:
        return sorted(t for t, s in self.task_states.items() if s in ("failed", "upstream_failed"))


@cache
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT_ROOT / "dags"))


def get_dag(dag_id: str):
    bag = dag_bag()
    if dag_id not in bag.dags:
        raise KeyError(f"no DAG {dag_id!r}; import errors: {bag.import_errors}")
    return bag.dags[dag_id]


def fresh_dag(dag_id: str):
    """The DAG parsed anew from its file.

    ``dag.test()`` resolves a run's conf into the tasks' Param objects, so a DAG object reused across
    runs would carry one test's params into the next run in this process.
    """
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=get_dag(dag_id).fileloc).dags[dag_id]


def run_dag(
    dag_id: str, conf: dict[str, Any] | None = None, *, quick_retries: tuple[str, ...] = (), **test_kwargs: Any
) -> DagRunResult:
    """``dag.test()`` (which serializes the DAG first, as Airflow 3.3 needs) and collect task states.

    ``quick_retries``: tasks whose retries come after 1 s instead of their category's delay, for a
    test that makes a task fail once and checks what its retry does.
    """
    from datetime import timedelta

    dag = fresh_dag(dag_id)
    for task_id in quick_retries:
        task = dag.get_task(task_id)
        task.retry_delay = timedelta(seconds=1)
        task.retry_exponential_backoff = 0
    return run_dag_object(dag, conf, **test_kwargs)


def run_dag_object(dag, conf: dict[str, Any] | None = None, **test_kwargs: Any) -> DagRunResult:
    """Like :func:`run_dag` for a DAG object the test loaded itself (e.g. with other settings)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    dag_id = dag.dag_id
    run = dag.test(run_conf=conf, **test_kwargs)
    with create_session() as session:
        run = session.merge(run)
        instances = run.get_task_instances(session=session)
        states = {}
        tries = {}
        for ti in instances:
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            states[key] = ti.state
            tries[key] = ti.try_number
        assert isinstance(run, DagRun)
        return DagRunResult(dag_id, run.run_id, run.state, states, tries)


def asset_events(dag_id: str, run_id: str) -> list[tuple[str, dict, str]]:
    """(asset URI, extra, source task id) of every asset event a DAG run emitted, in order."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(
            select(AssetEvent)
            .where(AssetEvent.source_dag_id == dag_id, AssetEvent.source_run_id == run_id)
            .order_by(AssetEvent.id)
        ).all()
        return [(event.uri, dict(event.extra or {}), event.source_task_id) for event in events]
