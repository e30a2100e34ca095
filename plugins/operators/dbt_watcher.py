"""Watcher execution: one dbt invocation builds the DAG run, every model and test still its own task.

:class:`DbtBuildProducerOperator` runs, in one worker process holding the ``dbt`` pool slot,
what the command line would: ``dbt source freshness`` (the models of a stale source are left out
of the build), ``dbt build`` with the project's ``threads``, and ``dbt docs generate`` (published
by the docs callback). dbt's event callbacks append each node's result and log lines to a journal
(:mod:`hooks.dbt_results`) as dbt reports them.

Every other dbt task is the Cosmos local operator it would be in local mode, plus
:class:`FollowsDbtBuild`: it starts in the triggerer (``start_from_trigger``, no worker, no pool
slot), follows its node through :class:`triggers.dbt_node.DbtNodeTrigger`, and ends in the state
dbt reported. When the build cannot answer for it (a retry or clear, dbt skipped it but its
upstream tasks have succeeded since), it runs its own dbt command in a worker, in the ``dbt``
pool and behind the ``dbt`` breaker, exactly as local mode does.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowSkipException
from airflow.task.trigger_rule import TriggerRule
from airflow.triggers.base import StartTriggerArgs
from airflow.utils.state import TaskInstanceState
from cosmos.operators.local import DbtBuildLocalOperator

from hooks.circuit_breaker import CircuitOpenError
from hooks.dbt_breaker import DbtWarehouseUnreachableError
from hooks.dbt_results import FAILED, JournalWriter, NodeResult, ProducerEnd
from operators.dbt_assets import DbtAssetsMixin
from operators.guarded_dbt import (
    DbtCircuitBreakerMixin,
    GuardedDbtBuildLocalOperator,
    GuardedDbtDocsLocalOperator,
    GuardedDbtRunLocalOperator,
    GuardedDbtSeedLocalOperator,
    GuardedDbtSnapshotLocalOperator,
    GuardedDbtSourceLocalOperator,
    GuardedDbtTestLocalOperator,
)

#: The journal's id of the docs the producer generates (not a dbt node).
DOCS_NODE = "docs.generate"
TRIGGER_CLASSPATH = "triggers.dbt_node.DbtNodeTrigger"
PRODUCER_TASK_ID = "dbt_build"

#: dbt events whose message belongs in a node's task log (the lines dbt prints for that node).
_NODE_LINE_EVENTS = frozenset(
    {
        "LogStartLine",
        "LogModelResult",
        "LogTestResult",
        "LogSeedResult",
        "LogSnapshotResult",
        "LogFreshnessResult",
        "SkippingDetails",
        "LogSkipBecauseError",
    }
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _NodeEvents:
    """dbt's event callback: gather each node's lines, journal the node when dbt finishes it."""

    def __init__(self, journal: JournalWriter) -> None:
        self.journal = journal
        self.results: dict[str, NodeResult] = {}
        self._lines: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        #: Off while dbt does not run nodes (``docs generate`` compiles every node and "finishes" it).
        self.recording = True

    def __call__(self, event: Any) -> None:
        if not self.recording:
            return
        name = event.info.name
        if name not in _NODE_LINE_EVENTS and name != "NodeFinished":
            return
        node = event.data.node_info
        unique_id = node.unique_id
        if not unique_id:
            return
        with self._lock:
            if name != "NodeFinished":
                self._lines.setdefault(unique_id, []).append(_ANSI.sub("", event.info.msg).strip())
                return
            run_result = event.data.run_result
            status = run_result.status or node.node_status
            result = NodeResult(
                unique_id=unique_id,
                status=status,
                message=_ANSI.sub("", run_result.message or "").strip() or None,
                lines=tuple(self._lines.pop(unique_id, ())),
            )
            self.results[unique_id] = result
        self.journal.record(result)


class DbtBuildProducerOperator(DbtAssetsMixin, DbtCircuitBreakerMixin, DbtBuildLocalOperator):
    """The one dbt invocation of a DAG run: source freshness, build, docs; results to the journal.

    Every relation the build changed is an asset event of this task (``asset_alias``), registered
    when it succeeds: the followers end in the triggerer, where Airflow registers no outlet events.

    :param freshness_sources: ``source:<name>.<table>`` selectors checked first; the models built
        from a source that is stale (``error``) are excluded from the build.
    :param docs_callback: import path of the callback publishing ``dbt docs generate``'s output
        (called as Cosmos calls a docs operator's callback); ``None`` generates no docs.
    :param docs_callback_args: its keyword arguments.

    The task succeeds when dbt ran to the end and reported every node, whatever their results
    (each node's task carries its own state); it fails when dbt itself could not run (the
    breaker counts an unreachable warehouse; an open breaker reschedules it).
    """

    template_fields: Sequence[str] = DbtBuildLocalOperator.template_fields

    def __init__(
        self,
        *,
        freshness_sources: Sequence[str] = (),
        docs_callback: str | None = None,
        docs_callback_args: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.freshness_sources = list(freshness_sources)
        self.docs_callback = docs_callback
        self.docs_callback_args = dict(docs_callback_args or {})
        self._events: _NodeEvents | None = None

    def execute(self, context: Any, **kwargs: Any) -> None:
        self.__dict__["_built_nodes"] = []
        ti = context["ti"]
        journal = JournalWriter(lambda key, value: ti.xcom_push(key=key, value=value))
        journal.open(try_number=ti.try_number)
        self._events = _NodeEvents(journal)
        self._dbt_runner_callbacks = [self._events]
        try:
            stale = self._check_freshness(context)
            self._build(context, stale)
            self._generate_docs(context, journal)
        finally:
            self._dbt_runner_callbacks = []
        failed = sorted(uid for uid, r in self._events.results.items() if r.status in FAILED)
        summary = f"dbt reported {len(self._events.results)} nodes, {len(failed)} failed"
        journal.close(ProducerEnd("completed", summary))
        self.log.info("%s%s", summary, f": {', '.join(failed)}" if failed else "")
        self.announce_built_relations(context)

    # ------------------------------------------------------------------ phases

    def _check_freshness(self, context: Any) -> list[str]:
        if not self.freshness_sources:
            return []
        with self._command(["source", "freshness"], select=self.freshness_sources, exclude=None, flags=[]):
            self.build_and_run_cmd(context=context)
        stale = sorted(
            uid for uid, result in self._events.results.items() if uid.startswith("source.") and result.status in FAILED
        )
        if stale:
            self.log.warning("stale sources, their models are not built: %s", ", ".join(stale))
        return stale

    def _build(self, context: Any, stale_sources: list[str]) -> None:
        exclude = _as_list(self.exclude) + [f"source:{uid.split('.', 2)[2]}+" for uid in stale_sources]
        with self._command(["build"], select=_as_list(self.select) or None, exclude=exclude or None):
            self.build_and_run_cmd(context=context, cmd_flags=self.add_cmd_flags())

    def _generate_docs(self, context: Any, journal: JournalWriter) -> None:
        if not self.docs_callback:
            return
        self._events.recording = False
        try:
            with self._command(
                ["docs", "generate"],
                select=None,
                exclude=None,
                flags=[],
                callback=self.docs_callback,
                callback_args=self.docs_callback_args,
            ):
                self.build_and_run_cmd(context=context)
        except (CircuitOpenError, DbtWarehouseUnreachableError):
            raise
        except Exception as error:
            journal.record(NodeResult(DOCS_NODE, "error", f"{type(error).__name__}: {error}"))
            self.log.exception("dbt docs generate failed; the models are built, the docs task reports it")
        else:
            journal.record(NodeResult(DOCS_NODE, "success", None, ("dbt docs generate: docs written and published",)))

    @contextlib.contextmanager
    def _command(
        self,
        base_cmd: list[str],
        *,
        select: list[str] | None,
        exclude: list[str] | None,
        flags: list[str] | None = None,
        callback: str | None = None,
        callback_args: dict[str, Any] | None = None,
    ) -> Iterator[None]:
        """Set this operator up for one dbt command (the build keeps its own flags and test selection)."""
        names = ("base_cmd", "select", "exclude", "dbt_cmd_flags", "indirect_selection", "callback", "callback_args")
        saved = {name: getattr(self, name, None) for name in names}
        self.base_cmd, self.select, self.exclude = base_cmd, select, exclude
        if base_cmd != ["build"]:
            self.indirect_selection = None  # only dbt build / test accept --indirect-selection
        if flags is not None:
            self.dbt_cmd_flags = flags
        self.callback, self.callback_args = callback, dict(callback_args or {})
        try:
            yield
        finally:
            for name, value in saved.items():
                setattr(self, name, value)

    def handle_exception_dbt_runner(self, result: Any) -> None:
        """Node failures are the nodes' tasks' business; only dbt failing to run fails the producer."""
        if not result.success and result.exception is not None:
            super().handle_exception_dbt_runner(result)

    def handle_exception_subprocess(self, result: Any) -> None:
        if result.exit_code not in (0, 1):  # 1: dbt ran and some node failed
            super().handle_exception_subprocess(result)


def _as_list(value: str | list[str] | None) -> list[str]:
    if not value:
        return []
    return value.split() if isinstance(value, str) else list(value)


class FollowsDbtBuild:
    """A Cosmos local dbt task that follows its node in the producer's build (watcher mode).

    :meth:`follow` (at DAG build time) makes the task start in the triggerer with
    :class:`~triggers.dbt_node.DbtNodeTrigger`; :meth:`resume` is where a worker picks it up when
    the trigger hands it over. Started in a worker instead (``dag.test()``, an executor that
    starts every task), :meth:`execute` defers to the same trigger.
    """

    producer_task_id: str
    followed_nodes: list[str]
    resource: str

    def follow(self, *, producer_task_id: str, nodes: Sequence[str], resource: str) -> None:
        """Follow ``nodes`` in the results of ``producer_task_id`` (call once the task's upstream edges are set)."""
        self.producer_task_id = producer_task_id
        self.followed_nodes = list(nodes)
        self.resource = resource
        self.trigger_rule = TriggerRule.ALWAYS
        self.start_from_trigger = True
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls=TRIGGER_CLASSPATH,
            trigger_kwargs=self._trigger_kwargs(),
            next_method="resume",
            next_kwargs=None,
            timeout=None,
        )

    def _trigger_kwargs(self, **extra: Any) -> dict[str, Any]:
        upstream = sorted(t for t in self.upstream_task_ids if t != self.producer_task_id)  # type: ignore[attr-defined]
        return {
            "nodes": self.followed_nodes,
            "producer_task_id": self.producer_task_id,
            "upstream_task_ids": upstream,
            "resource": self.resource,
            **extra,
        }

    def execute(self, context: Any, **kwargs: Any) -> None:
        from triggers.dbt_node import DbtNodeTrigger

        ti = context["ti"]
        trigger = DbtNodeTrigger(**self._trigger_kwargs(dag_id=ti.dag_id, run_id=ti.run_id, try_number=ti.try_number))
        self.defer(trigger=trigger, method_name="resume")  # type: ignore[attr-defined]

    def resume(self, context: Any, event: Any = None) -> None:
        """The trigger's verdict, in a worker: run the node's dbt command, or end as dbt reported."""
        from triggers.dbt_node import RUN_NODE

        if isinstance(event, dict) and event.get("action") == RUN_NODE:
            self.log.info("Running dbt for this task's %s: %s", self.resource, event.get("reason"))  # type: ignore[attr-defined]
            return super().execute(context)  # type: ignore[misc]
        state = str(event)
        if state == str(TaskInstanceState.SUCCESS):
            return None
        if state == str(TaskInstanceState.SKIPPED):
            raise AirflowSkipException(f"dbt did not run this {self.resource}; see the log above")
        raise AirflowException(f"dbt reported this {self.resource} as failed; see the log above")


class FollowingDbtBuildOperator(FollowsDbtBuild, GuardedDbtBuildLocalOperator):
    """A model and its tests in watcher mode; runs ``dbt build`` for that model itself when it must."""


class FollowingDbtRunOperator(FollowsDbtBuild, GuardedDbtRunLocalOperator):
    """A model's task in watcher mode; runs ``dbt run`` for the model itself when it must."""


class FollowingDbtTestOperator(FollowsDbtBuild, GuardedDbtTestLocalOperator):
    """A model's tests (or one multi-model test) in watcher mode; runs ``dbt test`` itself when it must."""


class FollowingDbtSourceOperator(FollowsDbtBuild, GuardedDbtSourceLocalOperator):
    """A source's freshness in watcher mode; runs ``dbt source freshness`` itself when it must."""


class FollowingDbtSeedOperator(FollowsDbtBuild, GuardedDbtSeedLocalOperator):
    """A seed's task in watcher mode."""


class FollowingDbtSnapshotOperator(FollowsDbtBuild, GuardedDbtSnapshotLocalOperator):
    """A snapshot's task in watcher mode."""


class FollowingDbtDocsOperator(FollowsDbtBuild, GuardedDbtDocsLocalOperator):
    """The docs task in watcher mode: reports the producer's ``dbt docs generate``, regenerates on retry."""


#: Guarded local operator -> its watcher-mode class.
FOLLOWING_OPERATORS: dict[type, type] = {
    GuardedDbtBuildLocalOperator: FollowingDbtBuildOperator,
    GuardedDbtRunLocalOperator: FollowingDbtRunOperator,
    GuardedDbtTestLocalOperator: FollowingDbtTestOperator,
    GuardedDbtSourceLocalOperator: FollowingDbtSourceOperator,
    GuardedDbtSeedLocalOperator: FollowingDbtSeedOperator,
    GuardedDbtSnapshotLocalOperator: FollowingDbtSnapshotOperator,
    GuardedDbtDocsLocalOperator: FollowingDbtDocsOperator,
}
