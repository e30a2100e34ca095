"""The results of one ``dbt build``, passed from the task running it to the tasks that follow its nodes.

The *producer* (the one task that runs dbt for the whole DAG run) appends what dbt reports about
each node (status, message, the node's own log lines) to a journal kept in XComs of its task
instance: ``dbt_results.head`` names the attempt, ``dbt_results.<attempt>.<n>`` are numbered
batches of entries in the order dbt reported them, flushed every fraction of a second. The last
entry of an attempt says the producer is done.

Readers are the triggers of the watching tasks, all in the triggerer: :class:`RunResultsReader`
keeps one reader per DAG run that fetches every batch once and wakes the triggers waiting on it,
so the cost of waiting is a few requests per second per run, however many tasks wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

log = logging.getLogger(__name__)

HEAD_KEY = "dbt_results.head"
#: How often the producer pushes what dbt reported since the last push.
FLUSH_INTERVAL = 0.2
#: How often a reader looks at the journal's head for new batches.
POLL_INTERVAL = 0.3
#: How often a reader reads the states of the run's tasks (the producer's, and upstream tasks').
STATE_INTERVAL = 2.0

#: dbt statuses by meaning (models report success/error, tests pass/warn/fail, freshness pass/warn/error).
SUCCEEDED = frozenset({"success", "pass", "warn"})
FAILED = frozenset({"error", "fail", "runtime error"})

#: Airflow states in which the producer will not report anything more.
PRODUCER_TERMINAL_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


def batch_key(attempt: str, number: int) -> str:
    return f"dbt_results.{attempt}.{number}"


@dataclass(frozen=True)
class NodeResult:
    """What dbt reported about one node: its status, message and log lines."""

    unique_id: str
    status: str
    message: str | None = None
    lines: tuple[str, ...] = ()
    #: When the producer recorded it (epoch seconds).
    recorded_at: float = field(default_factory=time.time)

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCEEDED

    @property
    def failed(self) -> bool:
        return self.status in FAILED

    def as_entry(self) -> dict[str, Any]:
        entry = asdict(self)
        entry["lines"] = list(self.lines)
        return entry

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> NodeResult:
        return cls(
            unique_id=entry["unique_id"],
            status=entry["status"],
            message=entry.get("message"),
            lines=tuple(entry.get("lines") or ()),
            recorded_at=float(entry.get("recorded_at") or 0.0),
        )


@dataclass(frozen=True)
class ProducerEnd:
    """The producer's last word: it ran dbt to the end (``completed``) or gave up (``failed``)."""

    outcome: str
    message: str = ""
    recorded_at: float = field(default_factory=time.time)

    @property
    def completed(self) -> bool:
        return self.outcome == "completed"


class JournalWriter:
    """The producer's side: record node results from any thread; a background thread pushes them.

    ``push(key, value)`` is the task instance's ``xcom_push``. dbt's worker threads only append
    to a list; the flusher pushes each batch, then the head with the number of batches, so a
    reader never asks for a batch that is not there.
    """

    def __init__(self, push: Callable[[str, Any], None], *, flush_interval: float = FLUSH_INTERVAL) -> None:
        self._push = push
        self._flush_interval = flush_interval
        self._pending_lock = threading.Lock()
        self._push_lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self._head: dict[str, Any] = {"attempt": uuid.uuid4().hex[:12], "batches": 0}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def attempt(self) -> str:
        return self._head["attempt"]

    def open(self, **details: Any) -> None:
        """Announce a new attempt (a retry or reschedule of the producer starts a new journal)."""
        self._head.update(details, opened_at=time.time())
        with self._push_lock:
            self._push(HEAD_KEY, self._head)
        self._thread = threading.Thread(target=self._flush_loop, name="dbt-results-journal", daemon=True)
        self._thread.start()

    def record(self, result: NodeResult) -> None:
        with self._pending_lock:
            self._pending.append({"node": result.as_entry()})

    def close(self, end: ProducerEnd) -> None:
        """Push everything still pending and the producer's end; stop the flusher."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._pending_lock:
            self._pending.append({"end": asdict(end)})
        self.flush()

    def flush(self) -> None:
        with self._push_lock:
            with self._pending_lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            number = self._head["batches"]
            self._push(batch_key(self.attempt, number), batch)
            self._head = {**self._head, "batches": number + 1}
            self._push(HEAD_KEY, self._head)

    def _flush_loop(self) -> None:
        while not self._stop.wait(self._flush_interval):
            try:
                self.flush()
            except Exception:  # the next flush (or close) tries again with everything still pending
                log.warning("could not push dbt results yet", exc_info=True)


@dataclass
class _RunState:
    attempt: str | None = None
    next_batch: int = 0
    results: dict[str, NodeResult] = field(default_factory=dict)
    end: ProducerEnd | None = None
    producer_state: str | None = None
    #: The producer's task instance ended and every batch it pushed has been read.
    drained: bool = False

    @property
    def completed(self) -> bool:
        """The producer ran dbt to the end: every node it will report, it has reported."""
        return self.end is not None and self.end.completed

    @property
    def finished(self) -> bool:
        """Nothing more will be reported (by this attempt): the end was read, or the task ended and all was read."""
        return self.completed or self.drained


#: Producer states in which it has pushed (or is pushing) a journal head.
_PRODUCER_STARTED_STATES = frozenset({"running", "success", "failed", "up_for_retry", "up_for_reschedule"})


class RunResultsReader:
    """The triggerer's side: one per (DAG, run, producer), shared by every trigger waiting on that run.

    ``fetch(key)`` returns the producer's XCom ``key`` (or ``None``); ``fetch_states()`` the states
    of every task instance of the run. :meth:`subscribe` builds them from the Task SDK (the
    triggerer forwards those calls to the API server). They are called on the event loop itself,
    through a greenback portal as the triggerer's own comms expect, never from another thread.
    The task states are read every :data:`STATE_INTERVAL` seconds, for all the run's waiting
    triggers at once.
    """

    _readers: ClassVar[dict[tuple[str, str, str], RunResultsReader]] = {}

    def __init__(self, key: tuple[str, str, str], fetch, fetch_states) -> None:
        self.key = key
        self.producer_task_id = key[2]
        self._fetch = fetch
        self._fetch_states = fetch_states
        self.state = _RunState()
        self.task_states: dict[str, str | None] = {}
        self._subscribers = 0
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------------ sharing

    @classmethod
    @contextlib.asynccontextmanager
    async def subscribe(cls, dag_id: str, run_id: str, producer_task_id: str):
        """The reader of this run (started on first use, stopped when its last trigger leaves)."""
        key = (dag_id, run_id, producer_task_id)
        reader = cls._readers.get(key)
        if reader is None:
            reader = cls._readers[key] = cls(key, *_task_sdk_fetchers(dag_id, run_id, producer_task_id))
        reader._subscribers += 1
        if reader._task is None or reader._task.done():
            reader._task = asyncio.get_running_loop().create_task(reader._poll(), name=f"dbt-results {key}")
        try:
            yield reader
        finally:
            reader._subscribers -= 1
            if reader._subscribers == 0:
                cls._readers.pop(key, None)
                await reader._stop()

    async def _stop(self) -> None:
        """Stop polling, and wait for a read in flight: none may reach the Task SDK after its trigger ended."""
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=30)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()

    async def changed(self, timeout: float) -> None:
        """Wait until the reader learned something new (or ``timeout`` seconds)."""
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    # ------------------------------------------------------------------ polling

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _poll(self) -> None:
        with contextlib.suppress(ImportError):
            import greenback

            await greenback.ensure_portal()  # lets the Task SDK's sync calls await the triggerer's comms
        last_states = 0.0
        while not self._stopping.is_set():
            try:
                if time.monotonic() - last_states >= STATE_INTERVAL:
                    last_states = time.monotonic()
                    await self._read_states()
                if self.state.producer_state in _PRODUCER_STARTED_STATES:
                    await self._read_journal()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("could not read the dbt results of %s yet", self.key, exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), POLL_INTERVAL)

    async def _read_states(self) -> None:
        states = self._fetch_states()
        producer_state = states.get(self.producer_task_id)
        changed = states != self.task_states
        self.task_states = states
        state = self.state
        state.producer_state = producer_state
        if producer_state in PRODUCER_TERMINAL_STATES and not state.drained:
            # The task has ended: what the head counts now is all there will be.
            await self._read_journal()
            state.drained = True
            changed = True
        elif producer_state not in PRODUCER_TERMINAL_STATES:
            state.drained = False
        if changed:
            self._notify()

    async def _read_journal(self) -> None:
        head = self._fetch(HEAD_KEY)
        if not isinstance(head, dict) or not head.get("attempt"):
            return
        state = self.state
        if head["attempt"] != state.attempt:
            # A new attempt of the producer: its results replace what an earlier attempt reported.
            state.attempt, state.next_batch, state.end = head["attempt"], 0, None
            self._notify()
        while state.next_batch < int(head.get("batches") or 0):
            batch = self._fetch(batch_key(state.attempt, state.next_batch))
            if batch is None:
                return  # the attempt was replaced meanwhile; the next head says by what
            state.next_batch += 1
            for entry in batch:
                if "node" in entry:
                    result = NodeResult.from_entry(entry["node"])
                    state.results[result.unique_id] = result
                elif "end" in entry:
                    state.end = ProducerEnd(**entry["end"])
            self._notify()


def _task_sdk_fetchers(dag_id: str, run_id: str, producer_task_id: str):
    """Functions reading the producer's XComs and the run's task states through the Task SDK."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
    from airflow.sdk.execution_time.xcom import XCom

    def fetch(key: str) -> Any:
        return XCom.get_one(run_id=run_id, key=key, task_id=producer_task_id, dag_id=dag_id, map_index=-1)

    def fetch_states() -> dict[str, str | None]:
        states = RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=[run_id])
        run_states = states.get(run_id, {})
        return {task_id: (str(state) if state is not None else None) for task_id, state in run_states.items()}

    return fetch, fetch_states
