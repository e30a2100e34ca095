"""docs/task-registry.md is what `make registry` writes from the DAGs as they are now."""

from __future__ import annotations

import difflib

from include.registry.document import COMMAND, REGISTRY_PATH, render
from tests.support.dags import dag_bag


def test_committed_task_registry_is_what_the_command_writes():
    expected = render(dag_bag().dags.values())
    committed = REGISTRY_PATH.read_text() if REGISTRY_PATH.exists() else ""
    if committed != expected:
        diff = "".join(
            list(
                difflib.unified_diff(
                    committed.splitlines(keepends=True),
                    expected.splitlines(keepends=True),
                    "docs/task-registry.md (committed)",
                    "docs/task-registry.md (from the DAGs)",
                )
            )[:60]
        )
        raise AssertionError(f"docs/task-registry.md is out of date: run `{COMMAND}` and commit it.\n{diff}")


def test_registry_lists_every_task_that_is_not_rendered_by_cosmos():
    text = render(dag_bag().dags.values())
    for dag in dag_bag().dags.values():
        assert f"## {dag.dag_id}\n" in text
        for task in dag.tasks:
            if not (getattr(task, "extra_context", None) or {}).get("dbt_node_config"):
                assert f"| `{task.task_id}`" in text, f"{dag.dag_id}.{task.task_id} missing from the registry"
        for name in dag.params:
            assert f"| `{name}` |" in text, f"{dag.dag_id}: Param {name} missing from the registry"
