"""The ``transform`` DAG's graph matches the dbt project: checked against the manifest, not by hand."""

from __future__ import annotations

import json
import logging

import pytest

from tests.support.transform import current_manifest, load_transform_dag


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(current_manifest().read_text())


@pytest.fixture(scope="module")
def dag(manifest):
    return load_transform_dag()


def _models(manifest: dict) -> dict[str, dict]:
    return {node["name"]: node for node in manifest["nodes"].values() if node["resource_type"] == "model"}


def _single_model_tests(manifest: dict, model_id: str) -> list[str]:
    return [
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "test" and node["depends_on"]["nodes"] == [model_id]
    ]


def test_it_is_rendered_from_the_manifest(dag, caplog):
    from cosmos.constants import LoadMode

    graph = dag.task_group_dict["dbt"].dbt_graph
    assert graph.load_method == LoadMode.DBT_MANIFEST
    # read with pathlib, not ObjectStoragePath (which loads every plugin on each parse)
    assert type(graph.project.manifest_path) is type(current_manifest())
    with caplog.at_level(logging.INFO, logger="include.transform.project"):
        load_transform_dag()
    assert "rendering dbt project analytics from manifest" in caplog.text


def test_one_run_task_per_model(dag, manifest):
    run_tasks = {task.task_id for task in dag.tasks if task.task_id.endswith(".run")}
    assert run_tasks == {f"dbt.{name}.run" for name in _models(manifest)}
    assert len(_models(manifest)) >= 5


def test_each_model_is_tested_right_after_it_and_before_its_children(dag, manifest):
    models = _models(manifest)
    for name, node in models.items():
        test_task = dag.get_task(f"dbt.{name}.test")
        assert _single_model_tests(manifest, node["unique_id"]), f"{name} has no tests"
        assert test_task.upstream_task_ids == {f"dbt.{name}.run"}
        for child in models.values():
            if node["unique_id"] in child["depends_on"]["nodes"]:
                assert f"dbt.{name}.test" in dag.get_task(f"dbt.{child['name']}.run").upstream_task_ids


def test_a_test_on_two_models_runs_after_both(dag, manifest):
    relationship = next(n for n in manifest["nodes"].values() if n["name"].startswith("relationships_"))
    parents = {f"dbt.{uid.split('.')[-1]}.test" for uid in relationship["depends_on"]["nodes"]}
    task = next(t for t in dag.tasks if t.task_id.startswith("dbt.relationships_"))
    assert task.upstream_task_ids == parents


def test_freshness_is_checked_before_the_models_of_each_source(dag, manifest):
    from cosmos.operators.local import DbtSourceLocalOperator

    sources = {
        uid: s for uid, s in manifest["sources"].items() if (s["config"].get("freshness") or {}).get("error_after")
    }
    assert len(sources) >= 2
    for uid, source in sources.items():
        task = dag.get_task(f"dbt.{source['source_name']}_{source['name']}_source")
        assert isinstance(task, DbtSourceLocalOperator)
        assert task.select == f"source:{source['source_name']}.{source['name']}"
        readers = [m["name"] for m in _models(manifest).values() if uid in m["depends_on"]["nodes"]]
        assert readers
        for model in readers:
            assert task.task_id in dag.get_task(f"dbt.{model}.run").upstream_task_ids


def test_docs_are_generated_after_everything_else(dag):
    docs = dag.get_task("generate_docs")
    assert docs.get_flat_relative_ids(upstream=True) == {t.task_id for t in dag.tasks} - {"generate_docs", OUTCOME}


def test_every_dbt_task_is_a_guarded_dbt_call_in_the_dbt_pool(dag):
    from operators.guarded_dbt import DbtCircuitBreakerMixin

    for task in dag.tasks:
        if task.task_id == OUTCOME:
            continue
        assert isinstance(task, DbtCircuitBreakerMixin), f"{task.task_id}: {type(task).__name__} is not guarded"
        assert (task.pool, task.queue, task.pool_slots) == ("dbt", "dbt", 1), task.task_id
    assert dag.max_active_tasks == 1


# ----------------------------------------------------------------------------- watcher execution (the default)

OUTCOME = "dbt_build_passed"


def test_one_producer_runs_the_build_and_every_other_dbt_task_follows_it_from_the_triggerer(dag, manifest):
    from airflow.task.trigger_rule import TriggerRule

    from operators.dbt_watcher import DbtBuildProducerOperator, FollowsDbtBuild

    producer = dag.get_task("dbt.dbt_build")
    assert isinstance(producer, DbtBuildProducerOperator)
    assert producer.freshness_sources == ["source:raw.customers", "source:raw.orders"]
    assert producer.docs_callback == "include.transform.docs.publish_docs"
    followers = [t for t in dag.tasks if isinstance(t, FollowsDbtBuild)]
    assert len(followers) == len(dag.tasks) - 2  # all but the producer and the outcome
    for task in followers:
        assert task.start_from_trigger and task.trigger_rule == TriggerRule.ALWAYS, task.task_id
        kwargs = task.start_trigger_args.trigger_kwargs
        assert kwargs["producer_task_id"] == "dbt.dbt_build"
        assert set(kwargs["upstream_task_ids"]) == task.upstream_task_ids - {"dbt.dbt_build"}
        assert OUTCOME in task.downstream_task_ids
    assert dag.get_task(OUTCOME).trigger_rule == TriggerRule.NONE_FAILED


def test_each_task_follows_the_nodes_it_runs_in_local_mode(dag, manifest):
    def followed(task_id):
        return dag.get_task(task_id).start_trigger_args.trigger_kwargs["nodes"]

    relationship = next(n for n in manifest["nodes"].values() if n["name"].startswith("relationships_"))
    for name, node in _models(manifest).items():
        assert followed(f"dbt.{name}.run") == [node["unique_id"]]
        own_tests = {
            uid
            for uid, n in manifest["nodes"].items()
            if n["resource_type"] == "test" and node["unique_id"] in n["depends_on"]["nodes"]
        } - {relationship["unique_id"]}
        assert set(followed(f"dbt.{name}.test")) == own_tests
    task = next(t for t in dag.tasks if t.task_id.startswith("dbt.relationships_"))
    assert followed(task.task_id) == [relationship["unique_id"]]
    assert followed("dbt.raw_orders_source") == ["source.analytics.raw.orders"]
    assert followed("generate_docs") == ["docs.generate"]


def test_the_serialized_dag_starts_the_following_tasks_in_the_triggerer(dag):
    from airflow.serialization.serialized_objects import DagSerialization

    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    task = serialized.get_task("dbt.fct_orders.run")
    assert task.start_from_trigger is True
    assert task.start_trigger_args.trigger_cls == "triggers.dbt_node.DbtNodeTrigger"
    assert task.start_trigger_args.next_method == "resume"
    assert serialized.get_task("dbt.dbt_build").start_from_trigger is False


def test_local_mode_renders_one_dbt_call_per_task(monkeypatch):
    from operators.guarded_dbt import GuardedDbtRunLocalOperator, GuardedDbtTestLocalOperator

    monkeypatch.setenv("DBT_EXECUTION_MODE", "local")
    local = load_transform_dag()
    assert "dbt.dbt_build" not in local.task_dict and OUTCOME not in local.task_dict
    assert type(local.get_task("dbt.fct_orders.run")) is GuardedDbtRunLocalOperator
    assert type(local.get_task("dbt.fct_orders.test")) is GuardedDbtTestLocalOperator
    assert local.get_task("dbt.fct_orders.run").trigger_rule == "all_success"
