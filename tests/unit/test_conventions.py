"""The conventions of docs/contributing.md, checked on the code (so they stay applied)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("include", "plugins", "dags")
#: "no function over about 80 lines in include/": the limit, in lines of the whole definition.
MAX_FUNCTION_LINES = 80
#: Keys of the Airflow task context: include/ gets their values as arguments, never looks them up.
CONTEXT_KEYS = frozenset(
    {"params", "dag_run", "ti", "task_instance", "run_id", "triggering_asset_events", "outlet_events", "conf"}
)


def _modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{node.lineno}"


def test_no_function_in_include_or_plugins_is_longer_than_the_limit():
    long = [
        f"{_where(path, node)} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in _modules("include", "plugins")
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"split these functions (at most {MAX_FUNCTION_LINES} lines each):\n" + "\n".join(long)


def test_production_code_uses_no_assert_for_control_flow():
    found = [_where(p, n) for p in _modules(*PRODUCTION) for n in ast.walk(_tree(p)) if isinstance(n, ast.Assert)]
    assert not found, "assert is stripped under python -O and says nothing to an operator; raise a named error:\n" + (
        "\n".join(found)
    )


def _context_lookups(tree: ast.Module) -> list[ast.AST]:
    found = []
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "context"
        ):
            key = node.args[0].value
        elif isinstance(node, ast.Attribute) and node.attr == "conf" and isinstance(node.value, ast.Name):
            key = "conf" if node.value.id == "dag_run" else None
        if key in CONTEXT_KEYS:
            found.append(node)
    return found


@pytest.mark.parametrize("path", _modules("include"), ids=lambda p: str(p.relative_to(ROOT)))
def test_include_gets_trigger_input_as_arguments_never_from_the_context(path):
    lookups = [_where(path, node) for node in _context_lookups(_tree(path))]
    assert not lookups, (
        "include/ reads an Airflow context key; the DAG task should pass the value as a keyword argument "
        "(docs/contributing.md, 'How trigger input reaches the logic'):\n" + "\n".join(lookups)
    )


@pytest.mark.parametrize("path", _modules("dags"), ids=lambda p: p.name)
def test_dag_tasks_name_what_they_take_from_airflow(path):
    wholesale = [
        f"{_where(path, node)} {node.name}"
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.FunctionDef)
        and any(isinstance(d, ast.Name | ast.Call | ast.Attribute) for d in node.decorator_list)
        and node.args.kwarg is not None
        and node.args.kwarg.arg == "context"
    ]
    assert not wholesale, "a task takes **context; name the values it needs (params, run_id, ti...):\n" + "\n".join(
        wholesale
    )
