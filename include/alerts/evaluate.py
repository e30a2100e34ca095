"""Evaluate alerts in batches: run each alert's SQL read-only, then record state, events and outbox rows.

Phase 1 runs every alert's SQL on the least-privilege reader connection (``warehouse_reader``,
checked before use), in its own READ ONLY transaction with the alert's statement timeout, and
only after the server described it as one query that returns rows (``COPY``, ``DO``, ``CALL``,
``SET``... never run). A bad query (syntax error, a privilege it lacks, a write refused, a
timeout, several rows, a server limit such as ``temp_file_limit``, ending or breaking its own
session) is that alert's ``error``; the batch reconnects when needed and goes on. Only a
warehouse that does not answer a fresh connection is not the alert's fault: that propagates (and
counts against the ``database`` breaker), so the task is retried or rescheduled and no alert is
wrongly put in error.

Phase 2 reads the batch's rows, applies the state machine (:mod:`include.alerts.state`) and
renders the notifications (templates bounded in size and time) without any lock; then, in one
transaction, it locks the rows and writes one event per alert and one pending notification per
channel for every transition that notifies, for each alert whose row did not change meanwhile. A
retry of the same DAG run skips alerts already recorded for that run, so a check is never
counted twice.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from include.alerts.conditions import (
    ConditionError,
    QueryValue,
    condition_met,
    normalize_condition,
    to_query_value,
)
from include.alerts.messages import (
    Message,
    MessageContext,
    build_message,
    email_payload,
    slack_payload,
    webhook_body,
)
from include.alerts.settings import DEFAULT_CONNECTIONS
from include.alerts.state import AlertPolicy, AlertSnapshot, Outcome, Transition, next_state
from include.lineage.triggers import RelationChange, affecting
from include.sql import load_sql
from observability import metrics

if TYPE_CHECKING:
    from hooks.warehouse import WarehouseHook, WarehouseReaderHook

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueryResult:
    """What one alert's SQL returned: a value, or an error message."""

    value: QueryValue | None
    error: str | None
    duration_ms: float


@dataclass(frozen=True)
class EvaluationContext:
    """Where this evaluation runs: the DAG run (for the event rows) and the link messages carry."""

    run_id: str
    url: str
    now: datetime | None = None
    #: preview: record events and render notifications as ``dry_run`` rows, change no state, send nothing
    dry_run: bool = False
    #: why this run evaluates: ``clock``, ``change`` (asset events) or ``manual``
    trigger: str = "manual"
    #: the changes of warehouse relations that triggered the run (include.lineage.triggers)
    changes: tuple[RelationChange, ...] = ()

    def triggered_by(self, reads: Sequence[str] | None) -> list[dict[str, Any]] | None:
        """The triggering changes of what an alert reads, as kept in its event row (``None``: not a change run)."""
        if self.trigger != "change":
            return None
        return [change.as_dict() for change in affecting(self.changes, reads or ())]


@dataclass
class BatchSummary:
    evaluated: int = 0
    skipped: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    transitions: dict[str, int] = field(default_factory=dict)
    notifications: int = 0
    errors: list[str] = field(default_factory=list)
    #: alerts that started firing in this batch, by severity
    fired: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "evaluated": self.evaluated,
            "skipped": self.skipped,
            "outcomes": self.outcomes,
            "transitions": self.transitions,
            "notifications": self.notifications,
            "errors": self.errors,
        }


# ----------------------------------------------------------------------------- phase 1: run the SQL


def describe_sql_error(error: BaseException, timeout: float) -> str:
    """A message an alert's owner can act on (no connection details, no secrets)."""
    from hooks.warehouse import RefusedStatement

    sqlstate = getattr(error, "sqlstate", None)
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, RefusedStatement):
        return f"refused, not run: {error}"
    if sqlstate == "57014":
        return f"the query ran longer than its timeout of {timeout:g}s and was cancelled"
    if sqlstate == "25006":
        return f"refused: alert SQL runs in a read-only transaction and may not write ({first_line})"
    if sqlstate == "42501":
        return f"refused: the alert's reader role lacks the privilege ({first_line})"
    if sqlstate == "42P14" or "multiple commands" in first_line:
        return "the SQL must be exactly one statement"
    if sqlstate and sqlstate.startswith("53"):
        return f"the query hit a server limit ({sqlstate}: {first_line}); the warehouse itself answers"
    if (sqlstate and sqlstate.startswith(("57P", "08"))) or (sqlstate is None and _is_connection_error(error)):
        code = f"{sqlstate}: " if sqlstate else ""
        return f"the query ended or broke its own database session ({code}{first_line}); the warehouse itself answers"
    if sqlstate:
        return f"SQL error {sqlstate}: {first_line}"
    return f"{type(error).__name__}: {first_line}"


def _is_connection_error(error: BaseException) -> bool:
    import psycopg

    return isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))


def run_alert_query(hook: WarehouseReaderHook, sql: str, timeout: float, connection: Any = None) -> QueryResult:
    """Run one alert's SQL read-only with a statement timeout; its own errors become the result.

    The SQL is described on the server first and refused unless it is one query returning rows.
    An error that looks like the warehouse's (a server limit, a lost session) is the alert's own
    when a fresh connection still gets an answer; otherwise it propagates.

    ``connection``: an open connection of ``hook`` to reuse (a batch shares one; after a result
    whose query broke the session it is closed); default: a new one.
    """
    from hooks.circuit_breaker import CircuitOpenError
    from hooks.warehouse import RefusedStatement, describe_query, is_database_failure, run_single_statement

    started = time.perf_counter()
    value = error = None
    try:
        with hook.read_only_transaction(statement_timeout=timeout, connection=connection) as conn:
            describe_query(conn, sql)
            cursor = run_single_statement(conn, sql)
            if cursor.description is None:
                error = "the statement returned no result; an alert query must return one value"
            elif len(cursor.description) != 1:
                error = f"the query returned {len(cursor.description)} columns; an alert query must return exactly one"
            else:
                rows = cursor.fetchmany(2)
                if len(rows) > 1:
                    error = "the query returned more than one row; an alert query must return at most one"
                else:
                    value = to_query_value(rows[0][0] if rows else None)
    except CircuitOpenError:
        raise
    except RefusedStatement as refused:
        error = describe_sql_error(refused, timeout)
    except Exception as failure:
        if is_database_failure(failure) and not hook.warehouse_answers(failure):
            raise
        error = describe_sql_error(failure, timeout)
    return QueryResult(value, error, (time.perf_counter() - started) * 1000)


# ----------------------------------------------------------------------------- phase 2: record


def _snapshot(row: dict[str, Any]) -> AlertSnapshot:
    return AlertSnapshot(
        state=row["state"],
        consecutive_met=row["consecutive_met"],
        consecutive_clear=row["consecutive_clear"],
        state_changed_at=row["state_changed_at"],
        triggered_since=row["triggered_since"],
        incident_notified_at=row["incident_notified_at"],
        last_notified_at=row["last_notified_at"],
        last_value=row["last_value"],
        last_error=row["last_error"],
    )


def _policy(row: dict[str, Any]) -> AlertPolicy:
    return AlertPolicy(
        consecutive_checks=row["consecutive_checks"],
        recovery_checks=row["recovery_checks"],
        rearm_seconds=row["rearm_seconds"],
        muted_until=row["muted_until"],
    )


def judge(row: dict[str, Any], result: QueryResult) -> tuple[Outcome, bool | None]:
    """The state machine's input for one alert, and whether the condition was met."""
    if result.error is not None or result.value is None:
        return Outcome(error=result.error or "the query returned no value"), None
    try:
        condition = normalize_condition(row["condition"])
        met = condition_met(condition, row["threshold"], result.value, previous=row["last_value"])
    except (ConditionError, ValueError) as error:
        return Outcome(error=str(error), value=result.value.number), None
    return Outcome(met=met, value=result.value.number), met


def recipients(row: dict[str, Any], kind: str) -> list[tuple[int, dict[str, Any]]]:
    """(channel index, channel) of a notification.

    Errors go to the owner when the owner is an email address (index -1; through the alert's
    email connection, else ``smtp_default``), otherwise to the alert's channels.
    """
    channels = list(enumerate(row["channels"] or []))
    owner = (row["owner"] or "").strip()
    if kind == "error" and "@" in owner:
        connection = next(
            (c.get("connection") for _, c in channels if c.get("type") == "email" and c.get("connection")),
            DEFAULT_CONNECTIONS["email"],
        )
        return [(-1, {"type": "email", "connection": connection, "to": [owner]})]
    return channels


def _payload(channel_type: str, ctx: MessageContext, message: Message) -> dict[str, Any]:
    if channel_type == "slack":
        return slack_payload(ctx, message)
    if channel_type == "email":
        return email_payload(message)
    return {"body": webhook_body(ctx, message)}


def _message_context(
    row: dict[str, Any], transition: Transition, result: QueryResult, now: datetime, url: str, dry_run: bool
) -> MessageContext:
    after = transition.after
    since = after.triggered_since or transition.before.triggered_since
    if transition.notify == "error":
        since = after.state_changed_at or now
    return MessageContext(
        alert_id=row["id"],
        alert_name=row["name"],
        kind=transition.notify or transition.kind,
        state=after.state,
        previous_state=transition.before.state,
        severity=row["severity"],
        condition=row["condition"],
        threshold=row["threshold"],
        value=result.value.number if result.value else None,
        value_text=result.value.text if result.value else None,
        previous_value=transition.before.last_value,
        since=since,
        evaluated_at=now,
        url=url,
        description=row["description"],
        owner=row["owner"],
        error=after.last_error if transition.notify == "error" else None,
        dry_run=dry_run,
    )


@dataclass
class PreparedCheck:
    """One alert's check, worked out before any lock: the state machine's transition and the rendered notifications."""

    row: dict[str, Any]
    result: QueryResult
    outcome: Outcome
    met: bool | None
    transition: Transition
    notes: list[str]
    #: outbox rows to insert (the payload rendered already)
    notifications: list[dict[str, Any]]
    dry_run: bool


def prepare_check(row: dict[str, Any], result: QueryResult, context: EvaluationContext, now: datetime) -> PreparedCheck:
    """Apply the state machine to ``row`` (read without a lock) and render its notifications.

    Rendering an alert's templates (bounded in size and time) happens here, outside the
    transaction that locks the alerts: no row lock is held while a template renders.
    """
    outcome, met = judge(row, result)
    transition = next_state(_snapshot(row), _policy(row), outcome, now)
    notes = [transition.note] if transition.note else []
    targets = recipients(row, transition.notify) if transition.notify else []
    dry_run = context.dry_run or row["dry_run"]
    if transition.notify and not targets:
        notes.append("no channel to notify")
    if context.dry_run:
        notes.append("dry run: state not changed, nothing sent")
    elif dry_run and targets:
        notes.append("dry run alert: notifications recorded, not sent")
    notifications = []
    if targets:
        ctx = _message_context(row, transition, result, now, context.url, dry_run)
        message = build_message(ctx, row["subject_template"], row["message_template"])  # rendered once
        for index, channel in targets:
            channel_type = channel.get("type")
            if channel_type not in ("slack", "email", "webhook"):
                continue
            notifications.append(
                {
                    "alert_id": row["id"],
                    "kind": transition.notify,
                    "channel_index": index,
                    "channel_type": channel_type,
                    "channel": json.dumps(channel),
                    "payload": json.dumps(_payload(channel_type, ctx, message), default=str),
                    "idempotency_key": uuid.uuid4(),
                    "status": "dry_run" if dry_run else "pending",
                }
            )
    return PreparedCheck(row, result, outcome, met, transition, notes, notifications, dry_run)


def record_results(
    conn: Any,
    prepared: dict[int, PreparedCheck],
    context: EvaluationContext,
    summary: BatchSummary,
) -> None:
    """Phase 2 on an open transaction: lock the alerts, write events, outbox rows and states.

    An alert whose row changed since it was read (evaluated by a concurrent run, edited) is left
    for its next check: what was prepared from the old row is not written.
    """
    from psycopg.rows import dict_row

    now = context.now or datetime.now(UTC)
    with conn.cursor(row_factory=dict_row) as cur:
        locked = cur.execute(load_sql("alerts/lock_for_update.sql"), {"ids": list(prepared)}).fetchall()
    for current in locked:
        check = prepared[current["id"]]
        row = check.row
        if row["last_run_id"] == context.run_id or not row["enabled"] or current["version"] != row["version"]:
            summary.skipped += 1  # recorded by an earlier try of this run, disabled, or changed meanwhile
            continue
        event_id = _insert_event(conn, check, context, now)
        for notification in check.notifications:
            conn.execute(load_sql("alerts/insert_notification.sql"), {**notification, "event_id": event_id})
            summary.notifications += 1
        if not context.dry_run:
            _update_state(conn, row["id"], check.transition.after, context.run_id, now)
        _count(summary, check)


def _insert_event(conn: Any, check: PreparedCheck, context: EvaluationContext, now: datetime) -> int:
    """The event row of one check (value, condition, transition, why it ran); its id."""
    row, result, transition = check.row, check.result, check.transition
    triggered_by = context.triggered_by(row.get("reads"))
    if triggered_by:
        why = "; ".join(f"{c['relation']} changed at {c['at']} ({c['source']})" for c in triggered_by)
        log.info("alert %s evaluated because %s", row["name"], why)
    return conn.execute(
        load_sql("alerts/insert_event.sql"),
        {
            "alert_id": row["id"],
            "evaluated_at": now,
            "kind": transition.kind,
            "state_before": transition.before.state,
            "state_after": transition.after.state,
            "value": result.value.number if result.value else None,
            "previous_value": row["last_value"],
            "condition_met": check.met,
            "threshold": row["threshold"],
            "error": check.outcome.error,
            "duration_ms": round(result.duration_ms, 3),
            "notified": bool(check.notifications) and not check.dry_run,
            "note": "; ".join(check.notes) or None,
            "dag_run_id": context.run_id,
            "trigger": context.trigger,
            "triggered_by": json.dumps(triggered_by) if triggered_by is not None else None,
        },
    ).fetchone()[0]


def _update_state(conn: Any, alert_id: int, after: AlertSnapshot, run_id: str, now: datetime) -> None:
    """The alert's state after this check."""
    conn.execute(
        load_sql("alerts/update_state.sql"),
        {
            "alert_id": alert_id,
            "state": after.state,
            "consecutive_met": after.consecutive_met,
            "consecutive_clear": after.consecutive_clear,
            "state_changed_at": after.state_changed_at,
            "triggered_since": after.triggered_since,
            "incident_notified_at": after.incident_notified_at,
            "last_notified_at": after.last_notified_at,
            "last_value": after.last_value,
            "last_error": after.last_error,
            "evaluated_at": now,
            "run_id": run_id,
        },
    )


def _count(summary: BatchSummary, check: PreparedCheck) -> None:
    """One recorded check in the batch's summary (and the log, for a transition)."""
    row, outcome, transition = check.row, check.outcome, check.transition
    summary.evaluated += 1
    outcome_label = "error" if outcome.error else ("met" if check.met else "clear")
    summary.outcomes[outcome_label] = summary.outcomes.get(outcome_label, 0) + 1
    if transition.kind == "fired" and transition.before.state != "triggered":
        summary.fired[row["severity"]] = summary.fired.get(row["severity"], 0) + 1
    if transition.kind != "check":
        summary.transitions[transition.kind] = summary.transitions.get(transition.kind, 0) + 1
        log.info(
            "alert %s: %s (%s -> %s)%s",
            row["name"],
            transition.kind,
            transition.before.state,
            transition.after.state,
            f": {outcome.error}" if outcome.error else "",
        )
    if outcome.error:
        summary.errors.append(f"{row['name']}: {outcome.error}")


def run_batch_queries(reader: WarehouseReaderHook, definitions: Iterable[dict[str, Any]]) -> dict[int, QueryResult]:
    """Phase 1: every alert's SQL on one reader connection, a new one after a query broke it."""
    results: dict[int, QueryResult] = {}
    connection = None
    try:
        for definition in definitions:
            if connection is None or connection.closed:
                connection = reader.get_conn()  # one connection for the batch; one read-only transaction per alert
            timeout = float(definition["timeout_seconds"])
            result = run_alert_query(reader, definition["sql"], timeout, connection)
            results[definition["id"]] = result
            if connection.closed:
                log.warning("alert %s ended its database session; reconnecting for the rest", definition["name"])
    finally:
        if connection is not None:
            connection.close()
    return results


def evaluate_alerts(
    alert_ids: Sequence[int],
    context: EvaluationContext,
    hook: WarehouseHook | None = None,
    reader: WarehouseReaderHook | None = None,
) -> BatchSummary:
    """Evaluate one batch of alerts and record the results (see the module docstring).

    :param hook: the platform's connection (definitions, state, events, outbox).
    :param reader: the reader connection the alerts' SQL runs on.
    """
    from psycopg.rows import dict_row

    from hooks.warehouse import WarehouseHook
    from include.security.reader import reader_hook

    hook = hook or WarehouseHook(application_name="alerts-evaluation")
    reader = reader or reader_hook("alerts-evaluation")
    summary = BatchSummary()
    if not alert_ids:
        return summary
    started = time.perf_counter()
    with hook.transaction(statement_timeout=60) as conn, conn.cursor(row_factory=dict_row) as cur:
        definitions = cur.execute(load_sql("alerts/select_for_evaluation.sql"), {"ids": list(alert_ids)}).fetchall()
    results = run_batch_queries(reader, definitions)
    now = context.now or datetime.now(UTC)
    with hook.transaction(statement_timeout=60) as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(load_sql("alerts/select_for_recording.sql"), {"ids": list(results)}).fetchall()
    prepared = {row["id"]: prepare_check(row, results[row["id"]], context, now) for row in rows}
    with hook.transaction(statement_timeout=120, lock_timeout=30) as conn:
        record_results(conn, prepared, context, summary)
    elapsed_ms = (time.perf_counter() - started) * 1000
    _report_lineage(reader, rows)
    for outcome, count in summary.outcomes.items():
        metrics.incr("alerts.evaluated", count, outcome=outcome)
    for kind, count in summary.transitions.items():
        metrics.incr("alerts.transitions", count, kind=kind)
    for severity, count in summary.fired.items():
        metrics.incr("alerts.triggered", count, severity=severity)
    metrics.timing("alerts.batch_duration", elapsed_ms)
    log.info(
        "evaluated %d alerts in %.0f ms (%s); %d notifications queued",
        summary.evaluated,
        elapsed_ms,
        ", ".join(f"{k} {v}" for k, v in sorted(summary.outcomes.items())) or "none",
        summary.notifications,
    )
    return summary


def _report_lineage(reader: WarehouseReaderHook, rows: Iterable[dict[str, Any]]) -> None:
    """OpenLineage: the batch read what its alerts read, and wrote the events and the outbox."""
    from include.lineage.openlineage import report_relations
    from include.security.reader import PLATFORM_SCHEMA

    read = sorted({key for row in rows for key in row.get("reads") or ()})
    written = [f"{PLATFORM_SCHEMA}.{table}" for table in ("analytics_alert_events", "analytics_alert_notifications")]
    report_relations(reader, read=read, written=written)


def due_alert_ids(hook: WarehouseHook, run_id: str, names: Iterable[str] = ()) -> list[int]:
    """Enabled alerts due on the clock in this run (``names``: only these, whatever their interval or schedule)."""
    with hook.transaction(statement_timeout=60) as conn:
        rows = conn.execute(load_sql("alerts/select_due.sql"), {"run_id": run_id, "names": list(names)}).fetchall()
    return [row[0] for row in rows]


def affected_alert_ids(hook: WarehouseHook, run_id: str, changed: Sequence[str]) -> list[int]:
    """Enabled alerts evaluated on change that read one of the ``changed`` relations (``schema.table``)."""
    with hook.transaction(statement_timeout=60) as conn:
        rows = conn.execute(
            load_sql("alerts/select_affected.sql"), {"run_id": run_id, "changed": list(changed)}
        ).fetchall()
    return [row[0] for row in rows]


def plan_batches(alert_ids: Sequence[int], batch_size: int, slots: int = 4, min_batch: int = 25) -> list[list[int]]:
    """Split ``alert_ids`` into batches (one mapped task each) of at most ``batch_size``.

    Batches are made smaller so that every one of the pool's ``slots`` gets work, but not below
    ``min_batch`` alerts (a task costs more than checking a few alerts).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    ids = list(alert_ids)
    size = min(batch_size, max(min_batch, math.ceil(len(ids) / max(slots, 1))))
    return [ids[i : i + size] for i in range(0, len(ids), size)]
