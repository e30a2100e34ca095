"""The trigger of a task that follows one dbt node (or a model's tests) of the DAG run's ``dbt build``.

The task starts in the triggerer (``start_from_trigger``), so waiting costs no worker process and
no pool slot. The trigger ends the task itself, in the state dbt reported, with the node's dbt log
lines in the task's log (``TaskSuccessEvent`` / ``TaskFailedEvent`` / ``TaskSkippedEvent``), or
hands it to a worker to run dbt for that node alone when the build cannot answer for it:

* a retry or clear of the task (try 2 and later) accepts only results dbt reported after the try
  began; failing that, once the build is over, the task runs its node itself (so a retry really
  rebuilds the model, unlike astronomer-cosmos issue 3001);
* dbt skipped the node because something upstream failed or a source was stale: the task waits
  until its upstream tasks are done; if they all succeeded (a retry fixed them), it runs its node
  itself, else it ends *skipped*, naming the upstream task that stopped it;
* the build ended without reporting the node: the task runs it itself when the build ran to the
  end, and fails (pointing at the build's log) on its first try when the build itself failed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskFailedEvent, TaskSkippedEvent, TaskSuccessEvent, TriggerEvent

from hooks.dbt_results import (
    STATE_INTERVAL,
    NodeResult,
    RunResultsReader,
)

#: Payload of the event that sends the task to a worker to run dbt for its node.
RUN_NODE = "run_node"
_FINAL_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


class DbtNodeTrigger(BaseTrigger):
    """Follow ``nodes`` (dbt unique ids) in the results of ``producer_task_id``; end or hand over the task.

    ``upstream_task_ids`` are the task's dbt upstream tasks (checked only when dbt skipped the node
    or the task must run it itself); ``resource`` names what the task stands for in its log
    ("model stg_orders", "the tests of stg_orders").
    """

    def __init__(
        self,
        *,
        nodes: Sequence[str],
        producer_task_id: str,
        upstream_task_ids: Sequence[str] = (),
        resource: str = "node",
        dag_id: str | None = None,
        run_id: str | None = None,
        try_number: int | None = None,
    ) -> None:
        super().__init__()
        self.nodes = list(nodes)
        self.producer_task_id = producer_task_id
        self.upstream_task_ids = list(upstream_task_ids)
        self.resource = resource
        # Set when a worker deferred the task; a task started from the triggerer has its task instance.
        self.dag_id, self.run_id, self.try_number = dag_id, run_id, try_number

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "nodes": self.nodes,
                "producer_task_id": self.producer_task_id,
                "upstream_task_ids": self.upstream_task_ids,
                "resource": self.resource,
                "dag_id": self.dag_id,
                "run_id": self.run_id,
                "try_number": self.try_number,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        if self.dag_id is None:  # started from the triggerer: the task instance says which run and try
            ti = self.task_instance
            self.dag_id, self.run_id, self.try_number = ti.dag_id, ti.run_id, ti.try_number
        dag_id, run_id, try_number = self.dag_id, self.run_id, self.try_number
        async with RunResultsReader.subscribe(dag_id, run_id, self.producer_task_id) as reader:
            async for event in self._follow(reader, first_try=try_number <= 1, started=time.time()):
                yield event

    async def _follow(
        self, reader: RunResultsReader, *, first_try: bool, started: float
    ) -> AsyncIterator[TriggerEvent]:
        while True:
            state = reader.state
            found = [state.results.get(node) for node in self.nodes]
            # A retry (or clear) only believes what dbt reported after it began.
            usable = [r for r in found if r is not None and (first_try or r.recorded_at >= started)]
            if len(usable) == len(self.nodes):
                break
            if state.finished:
                if state.completed or not first_try:
                    why = "this is a retry" if not first_try else "the dbt build did not run it"
                    yield await self._run_unless_upstream_stopped(reader, why)
                    return
                self.log.error(
                    "The dbt build (task %s) ended %s before reporting %s; its log says why",
                    self.producer_task_id,
                    state.producer_state,
                    self.resource,
                )
                yield TaskFailedEvent()
                return
            await reader.changed(timeout=STATE_INTERVAL)

        for result in usable:
            _log_result(self.log, result)
        if all(r.succeeded for r in usable):
            yield TaskSuccessEvent()
        elif any(r.failed for r in usable):
            yield TaskFailedEvent()
        else:
            yield await self._run_unless_upstream_stopped(reader, "dbt skipped it")

    async def _run_unless_upstream_stopped(self, reader: RunResultsReader, why: str) -> TriggerEvent:
        """Hand the task to a worker once every upstream task has succeeded; skip if one did not."""
        upstream = [t for t in self.upstream_task_ids if t != self.producer_task_id]
        while True:
            states = {task_id: reader.task_states.get(task_id) for task_id in upstream}
            if all(state in _FINAL_STATES for state in states.values()):
                break
            await reader.changed(timeout=STATE_INTERVAL)
        stopped = {task_id: state for task_id, state in states.items() if state != "success"}
        if stopped:
            blame = ", ".join(f"{task_id} ended {state}" for task_id, state in sorted(stopped.items()))
            self.log.warning("Not running %s (%s): %s", self.resource, why, blame)
            return TaskSkippedEvent()
        self.log.info("Running dbt for %s in a worker (%s)", self.resource, why)
        return TriggerEvent({"action": RUN_NODE, "reason": why})


def _log_result(logger, result: NodeResult) -> None:
    for line in result.lines:
        logger.info("%s", line)
    if result.failed and result.message:
        logger.error("%s", result.message)
    elif result.status == "warn" and result.message:
        logger.warning("%s", result.message)
