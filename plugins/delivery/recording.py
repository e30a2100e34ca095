"""A send's outcome is never guessed: the worker that sent records it, and only a dead worker's rows become unknown.

A :class:`DeliveryWorker` is this process while it delivers (alerts' outbox, reports' deliveries):

* an **identity** (``[label:]host:pid:random``) that every row it claims carries;
* a **heartbeat**: a thread beats its row of ``analytics_delivery_workers`` every
  ``heartbeat_seconds``, on a connection of its own that does not go through the database breaker
  (an open breaker must not make a live worker look dead);
* a **deadline**: the end of its Airflow task's ``execution_timeout`` (less a margin). It claims
  nothing close to it, and keeps trying to record an outcome until it.

:meth:`DeliveryWorker.record` writes an outcome in a transaction on a fresh connection; when the
warehouse does not answer (a connection failure, an open database breaker) it waits with backoff
(0.5 s doubling to 15 s, ±10 %) and tries again until the warehouse answers or the deadline
passes. The outcome it holds meanwhile is in the task log at every attempt. The writes must be
idempotent (each ``UPDATE`` checks the row is still this worker's): a write that committed but
whose answer was lost is simply written again.

Whether a worker is alive is the view ``analytics_delivery_worker_status`` (migration V065): its
heartbeat is younger than ``stale_after_seconds`` (six beats), counted from the warehouse's own
start so that a restart does not make live workers look dead, and its deadline has not passed.
A claimed row whose worker is not alive (killed, or gone past its deadline without recording) is
settled by the next delivery run: sent again where the receiver drops repeats
(:data:`delivery.sending.RESEND_WHEN_UNKNOWN`), otherwise marked ``unknown`` with the reason.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from hooks.warehouse import WarehouseHook

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Seconds between two heartbeats of a delivery worker (``DELIVERY_HEARTBEAT_SECONDS``).
HEARTBEAT_SECONDS = 5.0
#: Beats missed before a worker counts as gone.
STALE_BEATS = 6
#: A worker outside an Airflow task (the CLI) keeps trying to record for this long.
DEFAULT_DEADLINE_SECONDS = 900.0
#: Seconds one send and the record of its outcome may take: nothing is claimed closer to the deadline.
SEND_RESERVE_SECONDS = 60.0
#: Recording retries: first wait, and the longest.
RECORD_RETRY_FIRST = 0.5
RECORD_RETRY_MAX = 15.0
_SQL_DIR = Path(__file__).resolve().parent / "sql"


@cache
def _sql(name: str) -> str:
    return (_SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


class OutcomeNotRecorded(RuntimeError):
    """The warehouse did not answer before the worker's deadline: the outcome it holds is only in the task log."""


def task_deadline(default_seconds: float = DEFAULT_DEADLINE_SECONDS) -> datetime:
    """When this task's own time runs out (``execution_timeout`` after its start, less a margin).

    Outside an Airflow task (or without a timeout): ``default_seconds`` from now.
    """
    now = datetime.now(UTC)
    try:
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
        timeout, started = ti.task.execution_timeout, ti.start_date
    except Exception:  # not in a task
        timeout = started = None
    if timeout and started:
        margin = min(timedelta(seconds=30), timeout / 10)
        return started + timeout - margin
    return now + timedelta(seconds=default_seconds)


def _task_label() -> str | None:
    try:
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
    except Exception:  # not in a task
        return None
    return f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}/try {ti.try_number}"


class DeliveryWorker:
    """This process while it delivers: identity, heartbeat and deadline (see the module docstring).

    Use it as a context manager: entering registers the worker (the warehouse must answer);
    leaving stops the heartbeat and retires it.

    :param hook: the platform's warehouse hook.
    :param deadline: when to stop trying (default: :func:`task_deadline`).
    :param heartbeat_seconds: seconds between beats; gone after :data:`STALE_BEATS` missed.
    :param label: a prefix of the identity (names the caller in ``claimed_by``).
    """

    def __init__(
        self,
        hook: WarehouseHook,
        *,
        deadline: datetime | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        label: str | None = None,
    ) -> None:
        self.hook = hook
        self.deadline = deadline or task_deadline()
        self.heartbeat_seconds = heartbeat_seconds
        self.id = ":".join(filter(None, [label, socket.gethostname(), str(os.getpid()), secrets.token_hex(4)]))
        self._task = _task_label()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Any = None

    # ------------------------------------------------------------------ life

    def __enter__(self) -> DeliveryWorker:
        self._beat()  # registered before anything is claimed
        self._thread = threading.Thread(target=self._beat_until_stopped, name=f"heartbeat {self.id}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.heartbeat_seconds + 5)
        self._close()
        try:
            with self.hook.transaction(statement_timeout=10) as conn:
                conn.execute(_sql("retire"), {"worker_id": self.id})
        except Exception as error:  # its deadline retires it all the same
            log.warning("delivery worker %s could not retire (%s); its deadline will", self.id, error)

    def seconds_left(self) -> float:
        return (self.deadline - datetime.now(UTC)).total_seconds()

    def may_claim(self, reserve: float = SEND_RESERVE_SECONDS) -> bool:
        """Whether there is time left to send one more message and record its outcome."""
        return self.seconds_left() > reserve

    # ------------------------------------------------------------------ heartbeat

    def _beat(self) -> None:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        if self._conn is None or self._conn.closed:
            # not through the database breaker: an open breaker must not make a live worker look dead
            self._conn = PostgresHook.get_conn(self.hook)
            self._conn.autocommit = True
        try:
            self._conn.execute(
                _sql("beat"),
                {
                    "worker_id": self.id,
                    "hostname": socket.gethostname(),
                    "pid": os.getpid(),
                    "task": self._task,
                    "stale_after": self.heartbeat_seconds * STALE_BEATS,
                    "remaining": max(self.seconds_left(), 0.0),
                },
            )
        except Exception:
            self._close()
            raise

    def _beat_until_stopped(self) -> None:
        failing = False
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                self._beat()
            except Exception as error:
                if not failing:
                    log.warning("delivery worker %s: heartbeat failed (%s); trying again", self.id, error)
                failing = True
            else:
                if failing:
                    log.info("delivery worker %s: heartbeat back", self.id)
                failing = False

    def _close(self) -> None:
        if self._conn is not None:
            with suppress(Exception):  # already broken
                self._conn.close()
            self._conn = None

    # ------------------------------------------------------------------ recording

    def record(self, write: Callable[[Any], T], *, what: str) -> T:
        """Run ``write(conn)`` in a transaction on a fresh connection until the warehouse answers (or the deadline).

        ``what`` names the outcome for the task log (``"notification 12: delivered"``). Errors that
        are not the warehouse's (a bug in ``write``) are raised at once.
        """
        from hooks.circuit_breaker import CircuitOpenError
        from hooks.warehouse import is_database_failure

        attempt = 0
        while True:
            try:
                with self.hook.transaction(statement_timeout=30) as conn:
                    result = write(conn)
                if attempt:
                    log.info("recorded %s after %d failed attempt(s)", what, attempt)
                return result
            except Exception as error:
                if not (isinstance(error, CircuitOpenError) or is_database_failure(error)):
                    raise
                left = self.seconds_left()
                if left <= 0:
                    log.error(
                        "NOT RECORDED: %s. The warehouse did not answer before this worker's deadline (%s); the row "
                        "will be settled as outcome unknown once this worker is gone. Last error: %s",
                        what,
                        self.deadline.isoformat(timespec="seconds"),
                        error,
                    )
                    raise OutcomeNotRecorded(f"{what}: not recorded before the deadline ({error})") from error
                delay = min(RECORD_RETRY_MAX, RECORD_RETRY_FIRST * 2**attempt) * random.uniform(0.9, 1.1)
                if isinstance(error, CircuitOpenError):
                    delay = max(delay, min(float(error.retry_after), RECORD_RETRY_MAX))
                delay = min(delay, left)
                log.warning(
                    "could not record %s (%s: %s); trying again in %.1fs, until %s",
                    what,
                    type(error).__name__,
                    error,
                    delay,
                    self.deadline.isoformat(timespec="seconds"),
                )
                time.sleep(delay)
                attempt += 1
