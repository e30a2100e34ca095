"""Cosmos's local dbt operators with every dbt invocation behind the ``dbt`` circuit breaker.

Each class is the Cosmos ``ExecutionMode.LOCAL`` operator of the same name plus
:class:`DbtCircuitBreakerMixin`, which wraps the one place a Cosmos local operator calls dbt
(``run_dbt_runner`` for ``InvocationMode.DBT_RUNNER``, ``run_subprocess`` for ``SUBPROCESS``).
Everything else (rendering, selection, templating, callbacks) is Cosmos's own.

Cosmos 1.15 picks operator classes by import path from the execution mode and has no hook
around a dbt invocation (its ``interceptors`` run only before), so :func:`guard_dbt_tasks`
upgrades the tasks Cosmos rendered to these subclasses; it refuses any dbt operator it has no
guarded class for, so nothing reaches the warehouse unguarded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from cosmos.operators.local import (
    AbstractDbtLocalBase,
    DbtBuildLocalOperator,
    DbtDocsLocalOperator,
    DbtRunLocalOperator,
    DbtSeedLocalOperator,
    DbtSnapshotLocalOperator,
    DbtSourceLocalOperator,
    DbtTestLocalOperator,
)

from observability import metrics


def _command_label(command: list[str]) -> str:
    """``["/bin/dbt", "source", "freshness", ...]`` -> ``source_freshness``; ``[..., "run", ...]`` -> ``run``."""
    words = [word for word in command[1:3] if not word.startswith("-")]
    if words and words[0] in ("source", "docs") and len(words) == 2:
        return "_".join(words)
    return words[0] if words else "unknown"


class DbtCircuitBreakerMixin:
    """Route each dbt invocation of a Cosmos local operator through the ``dbt`` breaker.

    The breaker target is the dbt profile target (``<profile>.<target>``): one warehouse.
    Emits ``dbt.invocations`` (command, outcome) and ``dbt.invocation_seconds`` (command).
    """

    profile_config: Any

    def _guarded(self, command: list[str], invoke: Callable[[], Any]) -> Any:
        from hooks.circuit_breaker import CircuitOpenError
        from hooks.dbt_breaker import DbtWarehouseUnreachableError, dbt_breaker, guarded_dbt_invocation

        label = _command_label(command)
        breaker = dbt_breaker(self.profile_config.profile_name, self.profile_config.target_name)
        started = time.perf_counter()
        outcome = "failed"
        try:
            result = guarded_dbt_invocation(breaker, invoke)
            succeeded = getattr(result, "success", None) is True or getattr(result, "exit_code", None) == 0
            outcome = "success" if succeeded else "failed"
            return result
        except CircuitOpenError:
            outcome = "refused"
            raise
        except DbtWarehouseUnreachableError:
            outcome = "unreachable"
            raise
        finally:
            metrics.incr("dbt.invocations", command=label, outcome=outcome)
            if outcome != "refused":
                metrics.timing("dbt.invocation_seconds", (time.perf_counter() - started) * 1000, command=label)

    def run_dbt_runner(self, command: list[str], env: dict[str, str], cwd: str, **kwargs: Any) -> Any:
        parent = super()
        return self._guarded(command, lambda: parent.run_dbt_runner(command, env, cwd, **kwargs))  # type: ignore[misc]

    def run_subprocess(self, command: list[str], env: dict[str, str], cwd: str, **kwargs: Any) -> Any:
        parent = super()
        return self._guarded(command, lambda: parent.run_subprocess(command, env, cwd, **kwargs))  # type: ignore[misc]


class GuardedDbtRunLocalOperator(DbtCircuitBreakerMixin, DbtRunLocalOperator):
    """``dbt run`` for one model, behind the dbt breaker."""


class GuardedDbtTestLocalOperator(DbtCircuitBreakerMixin, DbtTestLocalOperator):
    """``dbt test`` for one model's tests, behind the dbt breaker."""


class GuardedDbtSourceLocalOperator(DbtCircuitBreakerMixin, DbtSourceLocalOperator):
    """``dbt source freshness`` for one source table, behind the dbt breaker."""


class GuardedDbtSeedLocalOperator(DbtCircuitBreakerMixin, DbtSeedLocalOperator):
    """``dbt seed`` for one seed, behind the dbt breaker."""


class GuardedDbtSnapshotLocalOperator(DbtCircuitBreakerMixin, DbtSnapshotLocalOperator):
    """``dbt snapshot`` for one snapshot, behind the dbt breaker."""


class GuardedDbtBuildLocalOperator(DbtCircuitBreakerMixin, DbtBuildLocalOperator):
    """``dbt build`` for one node (``TestBehavior.BUILD``), behind the dbt breaker."""


class GuardedDbtDocsLocalOperator(DbtCircuitBreakerMixin, DbtDocsLocalOperator):
    """``dbt docs generate``, behind the dbt breaker; ``callback`` publishes the artefacts."""


#: Cosmos local operator -> its guarded subclass.
GUARDED_OPERATORS: dict[type, type] = {
    DbtRunLocalOperator: GuardedDbtRunLocalOperator,
    DbtTestLocalOperator: GuardedDbtTestLocalOperator,
    DbtSourceLocalOperator: GuardedDbtSourceLocalOperator,
    DbtSeedLocalOperator: GuardedDbtSeedLocalOperator,
    DbtSnapshotLocalOperator: GuardedDbtSnapshotLocalOperator,
    DbtBuildLocalOperator: GuardedDbtBuildLocalOperator,
    DbtDocsLocalOperator: GuardedDbtDocsLocalOperator,
}


def guard_dbt_tasks(tasks: Iterable[Any]) -> int:
    """Upgrade every Cosmos local dbt operator in ``tasks`` to its guarded subclass; return how many.

    Raises ``TypeError`` for a dbt operator without a guarded subclass (it would run unguarded).
    Tasks that are not dbt operators (Cosmos's empty placeholders) are left alone.
    """
    upgraded = 0
    for task in tasks:
        if isinstance(task, DbtCircuitBreakerMixin) or not isinstance(task, AbstractDbtLocalBase):
            continue
        guarded = GUARDED_OPERATORS.get(type(task))
        if guarded is None:
            raise TypeError(
                f"task {task.task_id!r}: no circuit-breaker-guarded class for {type(task).__name__}; "
                f"add one to {__name__}.GUARDED_OPERATORS"
            )
        task.__class__ = guarded
        upgraded += 1
    return upgraded
