"""Which circuit breakers a task's code goes through, read from the source (never written by hand).

A breaker is created in one place per dependency: ``CircuitBreaker("database", ...)`` in the
warehouse hook, ``CircuitBreaker("external_api", ...)`` in the HTTP hook and the channels, the
``dbt`` breaker behind the Cosmos operators. :class:`BreakerReach` follows, through the project's
modules (``include``, ``dags`` and the packages of ``plugins/``), every function, class and
module-level value a task's code names, and collects the breaker names of the ``CircuitBreaker(...)``
calls it reaches. It over-approximates (every method of a class it reaches counts) and never runs
the code: what it reports is what the task *may* go through.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: The class whose constructor names a breaker (first argument, or ``name=``).
BREAKER_CLASS = ("hooks.circuit_breaker", "CircuitBreaker")
#: Fields of AST nodes that hold annotations: a name used only as a type reaches nothing.
_ANNOTATION_FIELDS = frozenset({"annotation", "returns"})


@dataclass
class _Module:
    """One parsed source file: its top-level definitions, constants and imported names."""

    name: str
    tree: ast.Module
    definitions: dict[str, ast.AST] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)


def _imported_names(nodes: list[ast.stmt] | ast.AST) -> dict[str, tuple[str, str | None]]:
    """``local name -> (module, attribute or None)`` of every import statement under ``nodes``."""
    found: dict[str, tuple[str, str | None]] = {}
    for node in ast.walk(nodes) if isinstance(nodes, ast.AST) else (n for s in nodes for n in ast.walk(s)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    found[alias.asname] = (alias.name, None)
                else:
                    top = alias.name.split(".")[0]
                    found[top] = (top, None)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                found[alias.asname or alias.name] = (node.module, alias.name)
    return found


def _walk_code(node: ast.AST) -> Iterator[ast.AST]:
    """Every node under ``node`` except those inside annotations."""
    yield node
    for name, value in ast.iter_fields(node):
        if name in _ANNOTATION_FIELDS:
            continue
        children = value if isinstance(value, list) else [value]
        for child in children:
            if isinstance(child, ast.AST):
                yield from _walk_code(child)


class BreakerReach:
    """Breakers reachable from functions and classes of the project rooted at ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._modules: dict[str, _Module | None] = {}
        self._memo: dict[tuple[str, str], frozenset[str]] = {}

    # ------------------------------------------------------------------ public

    def of_function(self, function: object) -> frozenset[str]:
        """Breakers a Python callable (a task's ``python_callable``) may go through."""
        path = Path(inspect.getsourcefile(function) or "")  # type: ignore[arg-type]
        module = self._module_at(path)
        line = function.__code__.co_firstlineno  # type: ignore[attr-defined]
        if module is None:
            return frozenset()
        for node in ast.walk(module.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and line in (
                node.lineno,
                *(d.lineno for d in node.decorator_list),
            ):
                return self._reach_node(module, node, {})
        return frozenset()

    def of_class(self, cls: type) -> frozenset[str]:
        """Breakers an operator class (and its project base classes) may go through."""
        return self._reach_symbol(cls.__module__, cls.__qualname__.split(".")[0])

    # ------------------------------------------------------------------ modules

    def _path_of(self, name: str) -> Path | None:
        parts = name.split(".")
        for base in (self.root, self.root / "plugins"):
            for candidate in (base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts, "__init__.py")):
                if candidate.is_file():
                    return candidate
        return None

    def _module(self, name: str) -> _Module | None:
        if name not in self._modules:
            path = self._path_of(name)
            self._modules[name] = self._parse(name, path) if path else None
        return self._modules[name]

    def _module_at(self, path: Path) -> _Module | None:
        try:
            relative = path.resolve().relative_to(self.root.resolve())
        except ValueError:
            return None
        parts = list(relative.with_suffix("").parts)
        if parts and parts[0] == "plugins":
            parts = parts[1:]
        name = ".".join(parts)
        if name not in self._modules:
            self._modules[name] = self._parse(name, path)
        return self._modules[name]

    @staticmethod
    def _parse(name: str, path: Path) -> _Module:
        tree = ast.parse(path.read_text(), filename=str(path))
        module = _Module(name, tree, imports=_imported_names(tree.body))
        for statement in tree.body:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                module.definitions[statement.name] = statement
            elif isinstance(statement, ast.Assign | ast.AnnAssign) and statement.value is not None:
                targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        module.definitions[target.id] = statement.value
                        if isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, str):
                            module.constants[target.id] = statement.value.value
        return module

    # ------------------------------------------------------------------ resolution

    def _resolve(self, module: _Module, local: dict, name: str) -> tuple[str, str | None] | None:
        """``(module, symbol)`` a name refers to, ``(module, None)`` for a module; None outside the project."""
        if name in local:
            target_module, attribute = local[name]
        elif name in module.imports:
            target_module, attribute = module.imports[name]
        elif name in module.definitions:
            return module.name, name
        else:
            return None
        if attribute is not None and self._module(f"{target_module}.{attribute}") is not None:
            return f"{target_module}.{attribute}", None
        if self._module(target_module) is None:
            return None
        return target_module, attribute

    def _constant(self, module: _Module, local: dict, node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            resolved = self._resolve(module, local, node.id)
            if resolved and resolved[1]:
                target = self._module(resolved[0])
                return target.constants.get(resolved[1]) if target else None
        return None

    # ------------------------------------------------------------------ reach

    def _reach_symbol(self, module_name: str, symbol: str) -> frozenset[str]:
        key = (module_name, symbol)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = frozenset()  # a cycle reaches nothing new
        module = self._module(module_name)
        node = module.definitions.get(symbol) if module else None
        result = self._reach_node(module, node, {}) if module and node is not None else frozenset()
        self._memo[key] = result
        return result

    def _reach_node(self, module: _Module, node: ast.AST, outer: dict) -> frozenset[str]:
        local = {**outer, **_imported_names(node)}
        breakers: set[str] = set()
        for child in _walk_code(node):
            if isinstance(child, ast.Call):
                breakers |= self._breaker_of_call(module, local, child)
            elif isinstance(child, ast.Attribute) and isinstance(child.value, ast.Name):
                resolved = self._resolve(module, local, child.value.id)
                if resolved and resolved[1] is None:  # module.attribute
                    breakers |= self._reach_symbol(resolved[0], child.attr)
            if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load) and child is not node:
                resolved = self._resolve(module, local, child.id)
                if resolved and resolved[1] is not None and resolved != (module.name, getattr(node, "name", None)):
                    breakers |= self._reach_symbol(*resolved)
        return frozenset(breakers)

    def _breaker_of_call(self, module: _Module, local: dict, call: ast.Call) -> set[str]:
        if not isinstance(call.func, ast.Name):
            return set()
        if self._resolve(module, local, call.func.id) != BREAKER_CLASS:
            return set()
        argument = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "name"), None)
        name = self._constant(module, local, argument) if argument is not None else None
        return {name} if name else set()
