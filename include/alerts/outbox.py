"""Deliver the notification outbox: claim due rows atomically, send them, record the outcome.

A row is claimed with one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``
that sets it to ``sending`` and commits *before* anything is sent (one row per claim, so a worker
that dies mid-send leaves at most the row it was sending in doubt). Only ``pending`` rows are
claimed, so a retried task, a second worker or a concurrent DAG run never sends a row that was
claimed already: a notification is sent at most once. After the send the row becomes
``delivered`` (with the time) or, on failure, ``pending`` again with its attempt count and an
exponentially growing ``next_attempt_at`` (``failed`` after ``max_attempts``).

When a target's breaker is open the row goes back to ``pending`` without counting an attempt
and the other rows of that target are not tried in this round; other targets carry on. A row
left in ``sending`` by a worker that died mid-send is handled by :func:`recover_interrupted`.
"""

from __future__ import annotations

import logging
import os
import random
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from include.alerts.channels import connection_of, send_notification
from include.alerts.settings import AlertSettings
from include.sql import load_sql
from observability import metrics

if TYPE_CHECKING:
    from hooks.warehouse import WarehouseHook

log = logging.getLogger(__name__)


@dataclass
class DeliverySummary:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    deferred: int = 0
    recovered: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "retrying": self.retrying,
            "failed": self.failed,
            "deferred": self.deferred,
            "recovered": self.recovered,
            "errors": self.errors,
        }


def retry_delay(attempts: int, settings: AlertSettings, rng: random.Random | None = None) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: base * 2^(n-1), capped, ±10 %."""
    rng = rng or random
    delay = min(settings.retry_max, settings.retry_base * 2 ** max(attempts - 1, 0))
    return max(0.0, delay * rng.uniform(0.9, 1.1))


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class _Outbox:
    """The outbox's statements on one autocommit connection, each guarded by the database breaker."""

    def __init__(self, hook: WarehouseHook) -> None:
        self.hook = hook
        self.conn = hook.get_conn()
        self.conn.autocommit = True

    def execute(self, name: str, params: Mapping[str, Any]) -> list[Any]:
        from psycopg.rows import dict_row

        with self.hook.breaker.guard(), self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(load_sql(f"alerts/{name}.sql"), params)
            return cur.fetchall() if cur.description else []

    def close(self) -> None:
        self.conn.close()


def recover_interrupted(hook: WarehouseHook, settings: AlertSettings) -> dict[str, int]:
    """Settle rows left ``sending`` past the lease (see ``recover_interrupted.sql``)."""
    outbox = _Outbox(hook)
    try:
        rows = outbox.execute("recover_interrupted", {"lease_seconds": settings.sending_lease})
    finally:
        outbox.close()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
        metrics.incr("alerts.notifications", channel=row["channel_type"], outcome=f"interrupted_{row['status']}")
    if rows:
        log.warning("settled %d notifications interrupted during a send: %s", len(rows), counts)
    return counts


def deliver_pending(
    hook: WarehouseHook | None = None,
    settings: AlertSettings | None = None,
    *,
    send: Callable[[Mapping[str, Any]], None] = send_notification,
    worker: str | None = None,
) -> DeliverySummary:
    """Send every due notification once; failures stay pending with backoff (see the module docstring)."""
    from hooks.circuit_breaker import CircuitOpenError
    from hooks.warehouse import WarehouseHook

    hook = hook or WarehouseHook(application_name="alerts-delivery")
    settings = settings or AlertSettings.from_env()
    worker = worker or default_worker_name()
    summary = DeliverySummary(recovered=recover_interrupted(hook, settings))
    open_targets: dict[tuple[str, str], float] = {}
    seen: list[int] = []
    outbox = _Outbox(hook)
    try:
        while True:
            # One row per claim: a worker that dies mid-send leaves only the row it was sending in
            # doubt, never a claimed batch of rows it had not started.
            rows = outbox.execute("claim_notifications", {"claimed_by": worker, "limit": 1, "seen": seen})
            if not rows:
                break
            for row in rows:
                seen.append(row["id"])
                _deliver_one(outbox, row, send, settings, summary, open_targets, CircuitOpenError)
    finally:
        outbox.close()
    for status, count in _outbox_counts(hook).items():
        metrics.gauge("alerts.outbox", count, status=status)
    log.info(
        "notifications: %d delivered, %d to retry, %d failed for good, %d deferred by open breakers",
        summary.delivered,
        summary.retrying,
        summary.failed,
        summary.deferred,
    )
    return summary


def _deliver_one(
    outbox: _Outbox,
    row: dict[str, Any],
    send: Callable[[Mapping[str, Any]], None],
    settings: AlertSettings,
    summary: DeliverySummary,
    open_targets: dict[tuple[str, str], float],
    circuit_open: type[Exception],
) -> None:
    channel_type = row["channel_type"]
    target = (channel_type, connection_of(row["channel"]))
    if target in open_targets:
        _release(outbox, row, open_targets[target], "circuit breaker open; not attempted", summary)
        return
    try:
        send(row)
    except circuit_open as refused:
        retry_after = float(getattr(refused, "retry_after", settings.retry_base))
        open_targets[target] = retry_after
        _release(outbox, row, retry_after, str(refused), summary)
        return
    except Exception as error:
        from hooks.endpoints import EndpointNotAllowed
        from observability.redaction import redact

        attempts = int(row["attempts"])
        # an endpoint outside its connection's URL is refused for good: trying again will not change it
        give_up = attempts >= settings.max_attempts or isinstance(error, EndpointNotAllowed)
        message = redact(f"attempt {attempts}: {type(error).__name__}: {error}")[:1000]
        outbox.execute(
            "mark_retry",
            {
                "id": row["id"],
                "give_up": give_up,
                "delay_seconds": 0 if give_up else retry_delay(attempts, settings),
                "error": message,
            },
        )
        summary.errors.append(f"notification {row['id']} ({channel_type}): {message}")
        if give_up:
            summary.failed += 1
            metrics.incr("alerts.notifications", channel=channel_type, outcome="failed")
            log.error(
                "notification %s (%s) failed for good after %d attempts: %s", row["id"], channel_type, attempts, message
            )
        else:
            summary.retrying += 1
            metrics.incr("alerts.notifications", channel=channel_type, outcome="retry")
            log.warning("notification %s (%s) failed, will retry: %s", row["id"], channel_type, message)
        return
    outbox.execute("mark_delivered", {"id": row["id"]})
    summary.delivered += 1
    metrics.incr("alerts.notifications", channel=channel_type, outcome="delivered")


def _release(outbox: _Outbox, row: dict[str, Any], delay: float, reason: str, summary: DeliverySummary) -> None:
    outbox.execute("release_claim", {"id": row["id"], "delay_seconds": max(delay, 0.0), "error": reason[:1000]})
    summary.deferred += 1
    metrics.incr("alerts.notifications", channel=row["channel_type"], outcome="deferred")


def _outbox_counts(hook: WarehouseHook) -> dict[str, int]:
    outbox = _Outbox(hook)
    try:
        return {row["status"]: row["count"] for row in outbox.execute("count_notifications", {})}
    finally:
        outbox.close()


def purge_history(hook: WarehouseHook | None = None) -> int:
    """Delete events (and their finished notifications) older than each alert's ``log_retention_days``."""
    from hooks.warehouse import WarehouseHook

    hook = hook or WarehouseHook(application_name="alerts-retention")
    with hook.transaction(statement_timeout=300) as conn:
        deleted = conn.execute(load_sql("alerts/purge_events.sql")).fetchone()[0]
    if deleted:
        log.info("purged %d alert events past their retention", deleted)
    metrics.incr("alerts.events_purged", deleted)
    return deleted
