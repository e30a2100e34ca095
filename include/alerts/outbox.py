"""Deliver the notification outbox: claim due rows, send each through the delivery layer, record what happened.

* **Claim**: one row at a time, ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
  RETURNING``, set ``sending`` with this worker's identity and committed before anything is sent.
  Only ``pending`` rows are claimed, so a retried task, a second worker or a concurrent DAG run
  never sends a row another has claimed.
* **Send**: :func:`include.alerts.channels.send_notification` (the delivery layer decides what a
  failure means: one classifier per protocol, one breaker per server).
* **Record**: by the worker that sent, with retries on a fresh connection until the warehouse
  answers or the task's own time runs out (:class:`delivery.recording.DeliveryWorker`):
  ``delivered`` (recipients a mail server refused are noted and told to the owner); a permanent
  failure is ``failed`` at once and the owner is told once; a transient one goes back to
  ``pending`` with an exponentially growing ``next_attempt_at`` (``failed`` after
  ``max_attempts``, the owner told); a send refused by an open breaker goes back to ``pending``
  without counting an attempt, and the other rows of that target wait for the next round.
* **Settle**: a row left ``sending`` by a worker that is gone (killed between the send and the
  record, or past its deadline) has an unknown outcome. Webhooks are sent again with the same
  idempotency key (the receiver drops a repeat); email and Slack become ``unknown`` with the
  reason, are never sent twice, and the owner is told.

The owner is told by a ``delivery_problem`` notification in this same outbox: to the owner's
email address (when the owner is one), else to the alert's other channels; once per notification.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from include.alerts.channels import connection_of, send_notification
from include.alerts.settings import AlertSettings
from include.sql import load_sql
from observability import metrics

if TYPE_CHECKING:
    from delivery.recording import DeliveryWorker
    from delivery.sending import Outcome
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
    #: notifications that failed for good in this round (misconfiguration, refused targets)
    permanent: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "retrying": self.retrying,
            "failed": self.failed,
            "deferred": self.deferred,
            "recovered": self.recovered,
            "errors": self.errors,
            "permanent": self.permanent,
        }


def retry_delay(attempts: int, settings: AlertSettings, rng: random.Random | None = None) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: base * 2^(n-1), capped, ±10 %."""
    rng = rng or random
    delay = min(settings.retry_max, settings.retry_base * 2 ** max(attempts - 1, 0))
    return max(0.0, delay * rng.uniform(0.9, 1.1))


def _rows(conn, name: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(load_sql(f"alerts/{name}.sql"), params)
        return cur.fetchall() if cur.description else []


class _Claims:
    """Claims on one autocommit connection (through the database breaker), reopened once when it broke."""

    def __init__(self, hook: WarehouseHook) -> None:
        self.hook = hook
        self.conn = None

    def claim(self, worker_id: str, seen: list[int]) -> dict[str, Any] | None:
        import psycopg

        for attempt in (1, 2):
            if self.conn is None or self.conn.closed:
                self.conn = self.hook.get_conn()
                self.conn.autocommit = True
            try:
                with self.hook.breaker.guard():
                    rows = _rows(self.conn, "claim_notifications", {"claimed_by": worker_id, "limit": 1, "seen": seen})
                return rows[0] if rows else None
            except psycopg.OperationalError:
                self.close()
                if attempt == 2:  # the warehouse does not answer: nothing was sent, the task is retried
                    raise
        return None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def deliver_pending(
    hook: WarehouseHook | None = None,
    settings: AlertSettings | None = None,
    *,
    send: Callable[[Mapping[str, Any]], Outcome] = send_notification,
    worker: str | None = None,
) -> DeliverySummary:
    """Send every due notification once and record what became of it (see the module docstring).

    :param worker: a label for this worker's identity (``claimed_by`` starts with it).
    """
    from delivery.recording import DeliveryWorker
    from hooks.warehouse import WarehouseHook

    hook = hook or WarehouseHook(application_name="alerts-delivery")
    settings = settings or AlertSettings.from_env()
    with DeliveryWorker(hook, heartbeat_seconds=settings.heartbeat_seconds, label=worker) as delivering:
        summary = DeliverySummary(recovered=settle_interrupted(delivering, settings))
        _deliver_round(delivering, send, settings, summary)
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


def _deliver_round(
    worker: DeliveryWorker,
    send: Callable[[Mapping[str, Any]], Outcome],
    settings: AlertSettings,
    summary: DeliverySummary,
) -> None:
    from delivery.sending import Outcome

    claims = _Claims(worker.hook)
    open_targets: dict[tuple[str, str], float] = {}
    seen: list[int] = []
    unrecorded: list[int] = []  # sent, outcome not written: never given back as unsent
    try:
        # One row per claim: a worker that dies mid-send leaves only the row it was sending in doubt.
        while worker.may_claim():
            row = claims.claim(worker.id, seen)
            if row is None:
                break
            seen.append(row["id"])
            target = (row["channel_type"], connection_of(row["channel"]))
            if target in open_targets:
                outcome = Outcome(row["channel_type"], "deferred", "circuit breaker open; not attempted")
                outcome = _with_retry_after(outcome, open_targets[target])
            else:
                unrecorded.append(row["id"])
                outcome = send(row)
                if outcome.status == "deferred":
                    open_targets[target] = outcome.retry_after or settings.retry_base
            verdict, message = worker.record(
                lambda conn, row=row, outcome=outcome: _record(conn, worker.id, row, outcome, settings),
                what=f"notification {row['id']} ({row['channel_type']}): {outcome.describe()}",
            )
            if row["id"] in unrecorded:
                unrecorded.remove(row["id"])
            _count(summary, row, outcome, verdict, message)
    finally:
        claims.close()
        _release_unsent(worker, unrecorded)


def _with_retry_after(outcome: Outcome, retry_after: float) -> Outcome:
    from dataclasses import replace

    return replace(outcome, retry_after=retry_after)


def _record(conn, worker_id: str, row: dict[str, Any], outcome: Outcome, settings: AlertSettings) -> tuple[str, str]:
    """Write one outcome in the worker's transaction; return ``(verdict, message)``.

    Idempotent (every statement checks the row is still this worker's claim; a notice is queued
    once), so a write retried after a lost answer is harmless.
    """
    keys = {"id": row["id"], "claimed_by": worker_id}
    if outcome.delivered:
        conn.execute(load_sql("alerts/mark_delivered.sql"), {**keys, "note": outcome.problem})
        if outcome.problem:
            tell_owner(conn, [row], outcome.problem, "failed")
        return "delivered", outcome.problem or ""
    if outcome.status == "deferred":
        delay = max(outcome.retry_after or 0.0, 0.0)
        conn.execute(load_sql("alerts/release_claim.sql"), {**keys, "delay_seconds": delay, "error": outcome.reason})
        return "deferred", outcome.reason or ""
    attempts = int(row["attempts"])
    give_up = outcome.status == "permanent" or attempts >= settings.max_attempts
    why = "failed for good" if outcome.status == "permanent" else f"attempt {attempts} of {settings.max_attempts}"
    message = f"{why}: {outcome.reason}"[:1000]
    delay = 0 if give_up else retry_delay(attempts, settings)
    conn.execute(
        load_sql("alerts/mark_retry.sql"), {**keys, "give_up": give_up, "delay_seconds": delay, "error": message}
    )
    if give_up:
        tell_owner(conn, [row], message, "failed")
        return "failed", message
    return "retry", message


def _count(summary: DeliverySummary, row: dict[str, Any], outcome: Outcome, verdict: str, message: str) -> None:
    """What one recorded outcome adds to the round's summary, metrics and log."""
    channel_type = row["channel_type"]
    metrics.incr("alerts.notifications", channel=channel_type, outcome=verdict)
    if verdict == "delivered":
        summary.delivered += 1
        return
    if verdict == "deferred":
        summary.deferred += 1
        return
    summary.errors.append(f"notification {row['id']} ({channel_type}): {message}")
    if verdict == "retry":
        summary.retrying += 1
        log.warning("notification %s (%s) failed, will retry: %s", row["id"], channel_type, message)
        return
    summary.failed += 1
    if outcome.status == "permanent":
        summary.permanent.append(f"notification {row['id']} ({channel_type}, alert {row['alert_id']}): {message}")
    log.error("notification %s (%s): %s", row["id"], channel_type, message)


def _release_unsent(worker: DeliveryWorker, unrecorded: list[int]) -> None:
    """Give back rows this worker claimed but never sent (a claim whose answer was lost); best effort."""
    try:
        with worker.hook.transaction(statement_timeout=30) as conn:
            conn.execute(load_sql("alerts/release_unsent.sql"), {"claimed_by": worker.id, "sent": unrecorded})
    except Exception as error:  # the rows are settled once this worker is gone
        log.warning("could not give back unsent claims of %s: %s", worker.id, error)


def settle_interrupted(worker: DeliveryWorker, settings: AlertSettings) -> dict[str, int]:
    """Settle rows left ``sending`` by a worker that is gone (see ``settle_interrupted.sql``); tell their owners."""
    from delivery.sending import RESEND_WHEN_UNKNOWN

    def settle(conn) -> list[dict[str, Any]]:
        rows = _rows(conn, "settle_interrupted", {"resend": sorted(RESEND_WHEN_UNKNOWN)})
        unknown = [r for r in rows if r["status"] == "unknown"]
        for row in unknown:
            tell_owner(conn, [row], row["last_error"], "unknown")
        return rows

    rows = worker.record(settle, what="settling notifications whose worker is gone")
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
        metrics.incr("alerts.notifications", channel=row["channel_type"], outcome=f"interrupted_{row['status']}")
        log.warning("notification %s (%s): %s", row["id"], row["channel_type"], row["last_error"])
    return counts


def tell_owner(conn, failed: list[dict[str, Any]], problem: str, outcome: str) -> int:
    """Queue a ``delivery_problem`` notice about each of ``failed`` for its alert's owner, once; return how many."""
    from include.alerts.evaluate import recipients
    from include.alerts.messages import problem_payload

    about = [row for row in failed if row["kind"] != "delivery_problem"]  # a notice about a notice: never
    if not about:
        return 0
    alerts = {a["id"]: a for a in _rows(conn, "select_alerts_by_id", {"ids": sorted({r["alert_id"] for r in about})})}
    queued = 0
    for row in about:
        alert = alerts.get(row["alert_id"])
        if alert is None:
            continue
        owner_channels = [(i, c) for i, c in recipients(alert, "error") if i != row["channel_index"]]
        if not owner_channels:  # the owner's own address failed: the alert's channels instead
            owner_channels = [(i, c) for i, c in enumerate(alert["channels"] or []) if i != row["channel_index"]]
        for index, channel in owner_channels:
            channel_type = channel.get("type")
            if channel_type not in ("slack", "email", "webhook"):
                continue
            conn.execute(
                load_sql("alerts/insert_problem_notice.sql"),
                {
                    "alert_id": row["alert_id"],
                    "event_id": row["event_id"],
                    "channel_index": index,
                    "channel_type": channel_type,
                    "channel": json.dumps(channel),
                    "payload": json.dumps(problem_payload(channel_type, alert, row, problem, outcome), default=str),
                    "about_notification_id": row["id"],
                },
            )
            queued += 1
    return queued


def _outbox_counts(hook: WarehouseHook) -> dict[str, int]:
    with hook.transaction(statement_timeout=30) as conn:
        return {row["status"]: row["count"] for row in _rows(conn, "count_notifications", {})}


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
