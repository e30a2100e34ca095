"""Find every platform metric in the code: ``metrics.incr/gauge/timing`` calls, by static analysis.

Metrics added on any branch are found once merged, without running the code that emits them.
A call must name its metric with a string literal and its labels with keyword arguments (or
``**helper()`` where ``helper`` returns a dict literal in the same module), so that the StatsD name
and its label order are known statically.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from devstack.airflow_env import PROJECT_ROOT

SCANNED_DIRS = ("include", "plugins", "dags")
#: The metrics module (``plugins/observability/metrics.py``), as its callers import it.
METRICS_PACKAGE, METRICS_MODULE = "observability", "observability.metrics"
KINDS = {"incr": "counter", "gauge": "gauge", "timing": "observer"}
#: Keyword arguments of the metrics functions that are not labels.
_VALUE_ARGS = {"count", "value", "milliseconds"}


class MetricScanError(ValueError):
    """A metric call whose name or labels cannot be known statically."""


@dataclass(frozen=True)
class MetricUse:
    metric: str  # e.g. "breaker.transition"
    kind: str  # counter | gauge | observer
    labels: tuple[str, ...]  # label keys in emission order
    where: str  # path:line

    @property
    def domain(self) -> str:
        return self.metric.split(".", 1)[0]

    @property
    def prometheus_name(self) -> str:
        return "platform_" + self.metric.replace(".", "_")


def _metrics_aliases(tree: ast.Module) -> tuple[set[str], dict[str, str]]:
    """Names bound to the metrics module, and to its functions (alias -> function)."""
    modules, functions = set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == METRICS_PACKAGE:
            modules |= {a.asname or a.name for a in node.names if a.name == "metrics"}
        elif isinstance(node, ast.ImportFrom) and node.module == METRICS_MODULE:
            functions |= {a.asname or a.name: a.name for a in node.names if a.name in KINDS}
        elif isinstance(node, ast.Import):
            modules |= {a.asname for a in node.names if a.name == METRICS_MODULE and a.asname}
    return modules, functions


def _dict_returning_functions(tree: ast.Module) -> dict[str, tuple[str, ...]]:
    """Functions/methods whose single ``return`` is a dict literal with constant string keys."""
    found = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        returns = [n for n in ast.walk(node) if isinstance(n, ast.Return)]
        if len(returns) == 1 and isinstance(returns[0].value, ast.Dict):
            keys = returns[0].value.keys
            if all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in keys):
                found[node.name] = tuple(k.value for k in keys)
    return found


def _label_keys(call: ast.Call, helpers: dict[str, tuple[str, ...]], where: str) -> tuple[str, ...]:
    keys: list[str] = []
    for keyword in call.keywords:
        if keyword.arg is not None:
            if keyword.arg not in _VALUE_ARGS:
                keys.append(keyword.arg)
            continue
        value = keyword.value
        target = value.func if isinstance(value, ast.Call) and not value.args and not value.keywords else None
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
        if name not in helpers:
            raise MetricScanError(f"{where}: labels passed as **{ast.unparse(value)} cannot be read; use keywords")
        keys.extend(helpers[name])
    if len(set(keys)) != len(keys):
        raise MetricScanError(f"{where}: a label is given twice: {keys}")
    return tuple(keys)


def scan_file(path: Path, root: Path = PROJECT_ROOT) -> list[MetricUse]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    modules, functions = _metrics_aliases(tree)
    if not modules and not functions:
        return []
    helpers = _dict_returning_functions(tree)
    uses = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in modules:
            kind = func.attr
        elif isinstance(func, ast.Name) and func.id in functions:
            kind = functions[func.id]
        else:
            continue
        if kind not in KINDS:
            continue
        where = f"{path.relative_to(root)}:{node.lineno}"
        if not node.args or not (isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            raise MetricScanError(f"{where}: metrics.{kind}() needs the metric name as a string literal")
        uses.append(MetricUse(node.args[0].value, KINDS[kind], _label_keys(node, helpers, where), where))
    return uses


def scan_project(root: Path = PROJECT_ROOT) -> list[MetricUse]:
    """Every metric call under include/, plugins/ and dags/ (the metrics module itself excluded)."""
    uses = []
    for directory in SCANNED_DIRS:
        for path in sorted((root / directory).rglob("*.py")):
            if path == root / "plugins" / "observability" / "metrics.py":
                continue
            uses.extend(scan_file(path, root))
    return uses
