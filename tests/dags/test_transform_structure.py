"""The ``transform`` DAG's graph matches the dbt project: checked against the manifest, not by hand.

Both execution modes: *watcher* (the default; one dbt build, a task per model and its tests that
follows it from the triggerer) and *local* (a task per model and per model's tests, each running dbt).
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager

import pytest

from tests.support.transform import current_manifest, load_transform_dag

OUTCOME = "dbt_build_passed"
PRODUCER = "dbt.dbt_build"


@contextmanager
def _mode(mode: str):
    saved = os.environ.get("DBT_EXECUTION_MODE")
    os.environ["DBT_EXECUTION_MODE"] = mode
    try:
        yield
    finally:
        os.environ.pop("DBT_EXECUTION_MODE") if saved is None else os.environ.update(DBT_EXECUTION_MODE=saved)


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(current_manifest().read_text())


@pytest.fixture(scope="module")
def dag(manifest):
    return load_transform_dag()


@pytest.fixture(scope="module")
def local_dag(manifest):
    with _mode("local"):
        return load_transform_dag()


def _models(manifest: dict) -> dict[str, dict]:
    return {node["name"]: node for node in manifest["nodes"].values() if node["resource_type"] == "model"}


def _single_model_tests(manifest: dict, model_id: str) -> list[str]:
    return [
        uid
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "test" and node["depends_on"]["nodes"] == [model_id]
    ]


def _relationship(manifest: dict) -> dict:
    return next(n for n in manifest["nodes"].values() if n["name"].startswith("relationships_"))


def _freshness_sources(manifest: dict) -> dict[str, dict]:
    return {uid: s for uid, s in manifest["sources"].items() if (s["config"].get("freshness") or {}).get("error_after")}


def test_it_is_rendered_from_the_manifest(dag, caplog):
    from cosmos.constants import LoadMode

    graph = dag.task_group_dict["dbt"].dbt_graph
    assert graph.load_method == LoadMode.DBT_MANIFEST
    # read with pathlib, not ObjectStoragePath (which loads every plugin on each parse)
    assert type(graph.project.manifest_path) is type(current_manifest())
    with caplog.at_level(logging.INFO, logger="include.transform.project"):
        load_transform_dag()
    assert "rendering dbt project analytics from manifest" in caplog.text


# ----------------------------------------------------------------------------- watcher execution (the default)


def test_one_task_per_model_and_its_tests_then_what_depends_on_it(dag, manifest):
    models = _models(manifest)
    assert len(models) >= 5
    assert {t.task_id for t in dag.tasks if t.task_id.endswith("_model_build")} == {
        f"dbt.{name}_model_build" for name in models
    }
    for name, node in models.items():
        for child in models.values():
            if node["unique_id"] in child["depends_on"]["nodes"]:
                assert f"dbt.{name}_model_build" in dag.get_task(f"dbt.{child['name']}_model_build").upstream_task_ids


def test_a_test_on_two_models_is_its_own_task_after_both(dag, manifest):
    parents = {f"dbt.{uid.split('.')[-1]}_model_build" for uid in _relationship(manifest)["depends_on"]["nodes"]}
    task = next(t for t in dag.tasks if t.task_id.startswith("dbt.relationships_"))
    assert task.upstream_task_ids == parents


def test_freshness_comes_before_the_models_of_each_source(dag, manifest):
    sources = _freshness_sources(manifest)
    assert len(sources) >= 2
    for uid, source in sources.items():
        task_id = f"dbt.{source['source_name']}_{source['name']}_source"
        for model in (m for m in _models(manifest).values() if uid in m["depends_on"]["nodes"]):
            assert task_id in dag.get_task(f"dbt.{model['name']}_model_build").upstream_task_ids


def test_one_producer_runs_the_build_and_every_other_dbt_task_follows_it_from_the_triggerer(dag):
    from airflow.task.trigger_rule import TriggerRule

    from operators.dbt_watcher import DbtBuildProducerOperator, FollowsDbtBuild

    producer = dag.get_task(PRODUCER)
    assert isinstance(producer, DbtBuildProducerOperator)
    assert producer.freshness_sources == ["source:raw.customers", "source:raw.orders"]
    assert producer.docs_callback == "include.transform.docs.publish_docs"
    assert (producer.pool, producer.priority_weight) == ("dbt", 1000)
    followers = [t for t in dag.tasks if isinstance(t, FollowsDbtBuild)]
    assert len(followers) == len(dag.tasks) - 2  # all but the producer and the outcome
    for task in followers:
        assert task.start_from_trigger and task.trigger_rule == TriggerRule.ALWAYS, task.task_id
        assert task.pool == "dbt", task.task_id  # only when it runs dbt itself (a retry) does it take the slot
        kwargs = task.start_trigger_args.trigger_kwargs
        assert kwargs["producer_task_id"] == PRODUCER
        assert set(kwargs["upstream_task_ids"]) == task.upstream_task_ids - {PRODUCER}
        assert OUTCOME in task.downstream_task_ids
    assert dag.get_task(OUTCOME).trigger_rule == TriggerRule.NONE_FAILED


def test_each_task_follows_the_nodes_it_builds(dag, manifest):
    def followed(task_id):
        return dag.get_task(task_id).start_trigger_args.trigger_kwargs["nodes"]

    relationship = _relationship(manifest)["unique_id"]
    for name, node in _models(manifest).items():
        tests = {
            uid
            for uid, n in manifest["nodes"].items()
            if n["resource_type"] == "test" and node["unique_id"] in n["depends_on"]["nodes"]
        } - {relationship}
        assert followed(f"dbt.{name}_model_build") == [node["unique_id"], *sorted(tests)]
    task = next(t for t in dag.tasks if t.task_id.startswith("dbt.relationships_"))
    assert followed(task.task_id) == [relationship]
    assert followed("dbt.raw_orders_source") == ["source.analytics.raw.orders"]
    assert followed("generate_docs") == ["docs.generate"]


def test_the_serialized_dag_starts_the_following_tasks_in_the_triggerer(dag):
    from airflow.serialization.serialized_objects import DagSerialization

    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    task = serialized.get_task("dbt.fct_orders_model_build")
    assert task.start_from_trigger is True
    assert task.start_trigger_args.trigger_cls == "triggers.dbt_node.DbtNodeTrigger"
    assert task.start_trigger_args.next_method == "resume"
    assert serialized.get_task(PRODUCER).start_from_trigger is False


def test_every_dbt_task_is_a_guarded_dbt_call_in_the_dbt_pool(dag, local_dag):
    from operators.guarded_dbt import DbtCircuitBreakerMixin

    for each in (dag, local_dag):
        for task in each.tasks:
            if task.task_id == OUTCOME:
                continue
            assert isinstance(task, DbtCircuitBreakerMixin), f"{task.task_id}: {type(task).__name__} is not guarded"
            assert (task.pool, task.queue, task.pool_slots) == ("dbt", "dbt", 1), task.task_id
        assert each.max_active_tasks == 1


def test_docs_are_generated_after_everything_else(dag, local_dag):
    for each in (dag, local_dag):
        docs = each.get_task("generate_docs")
        everything = {t.task_id for t in each.tasks} - {"generate_docs", OUTCOME}
        assert docs.get_flat_relative_ids(upstream=True) == everything


# ----------------------------------------------------------------------------- local execution


def test_local_mode_runs_each_model_then_its_tests(local_dag, manifest):
    from operators.guarded_dbt import GuardedDbtRunLocalOperator, GuardedDbtTestLocalOperator

    assert PRODUCER not in local_dag.task_dict and OUTCOME not in local_dag.task_dict
    models = _models(manifest)
    assert {t.task_id for t in local_dag.tasks if t.task_id.endswith(".run")} == {f"dbt.{m}.run" for m in models}
    for name, node in models.items():
        assert type(local_dag.get_task(f"dbt.{name}.run")) is GuardedDbtRunLocalOperator
        test_task = local_dag.get_task(f"dbt.{name}.test")
        assert type(test_task) is GuardedDbtTestLocalOperator
        assert _single_model_tests(manifest, node["unique_id"]), f"{name} has no tests"
        assert test_task.upstream_task_ids == {f"dbt.{name}.run"}
        for child in models.values():
            if node["unique_id"] in child["depends_on"]["nodes"]:
                assert f"dbt.{name}.test" in local_dag.get_task(f"dbt.{child['name']}.run").upstream_task_ids
    relationship = next(t for t in local_dag.tasks if t.task_id.startswith("dbt.relationships_"))
    assert relationship.upstream_task_ids == {
        f"dbt.{uid.split('.')[-1]}.test" for uid in _relationship(manifest)["depends_on"]["nodes"]
    }
    for source in _freshness_sources(manifest).values():
        task = local_dag.get_task(f"dbt.{source['source_name']}_{source['name']}_source")
        assert task.select == f"source:{source['source_name']}.{source['name']}"
