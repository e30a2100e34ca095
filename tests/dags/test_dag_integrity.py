"""Every DAG file imports cleanly and every task follows its category's policy."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pendulum
import pytest

from devstack.airflow_env import PROJECT_ROOT
from devstack.airflow_settings import load_settings
from include.categories import APPROVED_TAGS, CATEGORIES
from tests.support.dags import dag_bag

DAG_FILES = sorted(p for p in (PROJECT_ROOT / "dags").glob("*.py") if not p.name.startswith("_"))


def _dags():
    return sorted(dag_bag().dags.values(), key=lambda d: d.dag_id)


def _category_of(dag) -> str:
    categories = [tag for tag in dag.tags if tag in CATEGORIES]
    assert len(categories) == 1, f"{dag.dag_id}: exactly one category tag expected, got {dag.tags}"
    return categories[0]


def test_every_dag_file_imports_without_errors():
    assert dag_bag().import_errors == {}


def test_every_dag_file_defines_a_dag():
    files_with_dags = {Path(dag.fileloc) for dag in _dags()}
    assert DAG_FILES, "no DAG files found"
    assert {p.resolve() for p in DAG_FILES} <= {p.resolve() for p in files_with_dags}


def test_no_dag_file_is_named_like_a_dbt_plugin():
    # dbt's plugin discovery imports dbt_*.py modules it finds (Cosmos issue #1673).
    assert [p.name for p in DAG_FILES if p.name.startswith("dbt_")] == []


def test_pools_of_airflow_settings_mirror_the_categories():
    # include/categories.py is the one source; airflow_settings.yaml (read by the Astro CLI) mirrors it.
    pools = {p["pool_name"]: (int(p["pool_slot"]), p["pool_description"]) for p in load_settings()["pools"]}
    assert pools == {name: (c.pool_slots, c.description) for name, c in CATEGORIES.items()}


@pytest.mark.parametrize("dag", _dags(), ids=lambda d: d.dag_id)
def test_every_task_runs_in_its_category_pool_and_queue(dag):
    category = _category_of(dag)
    pools = {p["pool_name"] for p in load_settings()["pools"]}
    for task in dag.tasks:
        assert task.pool in pools, f"{dag.dag_id}.{task.task_id}: pool {task.pool!r} does not exist"
        assert task.pool == category, f"{dag.dag_id}.{task.task_id}: pool {task.pool!r}, expected {category!r}"
        assert task.queue == category, f"{dag.dag_id}.{task.task_id}: queue {task.queue!r}"


@pytest.mark.parametrize("dag", _dags(), ids=lambda d: d.dag_id)
def test_every_task_retries_with_exponential_backoff(dag):
    for task in dag.tasks:
        where = f"{dag.dag_id}.{task.task_id}"
        assert task.retries >= 1, f"{where}: retries={task.retries}"
        assert float(task.retry_exponential_backoff) > 1, f"{where}: no exponential backoff"
        assert task.max_retry_delay is not None, f"{where}: no max_retry_delay"
        max_delay = task.max_retry_delay
        seconds = max_delay.total_seconds() if isinstance(max_delay, timedelta) else float(max_delay)
        assert 300 <= seconds <= 600, f"{where}: max_retry_delay {seconds}s outside [300, 600]"
        assert task.execution_timeout is not None, f"{where}: no execution_timeout"


@pytest.mark.parametrize("dag", _dags(), ids=lambda d: d.dag_id)
def test_every_dag_is_documented_owned_and_tagged(dag):
    assert dag.doc_md and len(dag.doc_md.strip()) > 80, f"{dag.dag_id}: doc_md missing or too short"
    assert "When it fails" in dag.doc_md, f"{dag.dag_id}: doc_md does not say what to do when it fails"
    policy = CATEGORIES[_category_of(dag)].describe(dag.schedule)
    assert dag.doc_md.rstrip().endswith(policy), f"{dag.dag_id}: doc_md lacks its generated policy line"
    assert dag.tags and set(dag.tags) <= APPROVED_TAGS, f"{dag.dag_id}: tags {dag.tags}"
    owners = {task.owner for task in dag.tasks}
    assert owners and "airflow" not in owners, f"{dag.dag_id}: owners {owners}"


@pytest.mark.parametrize("dag", _dags(), ids=lambda d: d.dag_id)
def test_every_dag_has_static_start_explicit_catchup_and_run_limit(dag):
    start = dag.start_date
    assert start is not None and start < pendulum.now("UTC").subtract(days=1), (
        f"{dag.dag_id}: start_date {start} must be a fixed date in the past"
    )
    assert dag.catchup is False, f"{dag.dag_id}: catchup must be explicitly off"
    assert dag.max_active_runs is not None and dag.max_active_runs <= 4, dag.dag_id
    source = (Path(dag.fileloc)).read_text()
    assert "platform_dag(" in source, f"{dag.dag_id}: DAGs are built with include.categories.platform_dag"
