"""Load the ``transform`` DAG fresh (with the environment of the moment) for a test."""

from __future__ import annotations

from devstack.airflow_env import PROJECT_ROOT

TRANSFORM_DAG_FILE = PROJECT_ROOT / "dags" / "transform.py"


def load_transform_dag():
    """Parse ``dags/transform.py`` now, so ``DBT_*`` variables set by the test take effect."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(TRANSFORM_DAG_FILE))
    if bag.import_errors or "transform" not in bag.dags:
        raise AssertionError(f"dags/transform.py did not load: {bag.import_errors}")
    return bag.dags["transform"]


def without_retries(dag):
    """Make every failure final, so ``dag.test()`` does not wait out retry delays.

    The retry policy itself is the category's (tests/dags checks it); a test about what a failure
    stops only needs the failure.
    """
    for task in dag.tasks:
        task.retries = 0
    return dag


def current_manifest():
    """The bundled project's manifest, rebuilt first if a project file changed since (``make dbt-manifest``)."""
    from include.transform.manifest import ensure_manifest
    from include.transform.project import DbtProject

    return ensure_manifest(DbtProject.from_env())


def in_dependency_order(dag):
    """Let ``dag.test()`` run a watcher-mode DAG: each dbt task after its upstream tasks.

    Under the scheduler every dbt task starts at once in the triggerer (trigger rule ``always``)
    and follows the build; ``dag.test()`` runs one task at a time in the order the trigger rules
    allow, so with ``always`` a task could wait for a build that has not started. ``all_done``
    orders them after the build (and after their upstream tasks) without changing what they do.
    """
    from airflow.task.trigger_rule import TriggerRule

    from operators.dbt_watcher import FollowsDbtBuild

    for task in dag.tasks:
        if isinstance(task, FollowsDbtBuild):
            task.trigger_rule = TriggerRule.ALL_DONE
    return dag
