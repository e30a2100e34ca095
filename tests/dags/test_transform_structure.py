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
    assert docs.get_flat_relative_ids(upstream=True) == {t.task_id for t in dag.tasks} - {"generate_docs"}


def test_every_task_is_a_guarded_dbt_call_in_the_dbt_pool(dag):
    from operators.guarded_dbt import DbtCircuitBreakerMixin

    for task in dag.tasks:
        assert isinstance(task, DbtCircuitBreakerMixin), f"{task.task_id}: {type(task).__name__} is not guarded"
        assert (task.pool, task.queue, task.pool_slots) == ("dbt", "dbt", 1), task.task_id
    assert dag.max_active_tasks == 1
