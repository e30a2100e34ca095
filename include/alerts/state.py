"""The alert state machine: from one evaluation's outcome to the next state (pure logic, no I/O).

States: ``unknown`` (never checked) -> ``ok`` / ``triggered`` / ``error``.

* **Hysteresis**: an alert fires only after ``consecutive_checks`` checks in a row meet the
  condition, and recovers only after ``recovery_checks`` checks in a row do not.
* **Rearm**: while still triggered, the notification is repeated once ``rearm_seconds`` have
  passed since the last one (no rearm: one notification per firing).
* **Recovery**: a firing that was notified gets a recovery notification when it clears.
* **Error**: bad SQL, a timeout or an unusable value put the alert in ``error``; its owner is told
  once, on entering the state; the next good check resolves it.
* **Mute**: while ``muted_until`` is in the future, transitions are recorded but nothing is sent;
  a firing that is still on when the mute ends is notified then.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime


@dataclass(frozen=True)
class AlertSnapshot:
    """The evaluation state kept on the alert's row."""

    state: str = "unknown"
    consecutive_met: int = 0
    consecutive_clear: int = 0
    state_changed_at: datetime | None = None
    triggered_since: datetime | None = None
    incident_notified_at: datetime | None = None
    last_notified_at: datetime | None = None
    last_value: float | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class AlertPolicy:
    consecutive_checks: int = 1
    recovery_checks: int = 1
    rearm_seconds: float | None = None
    muted_until: datetime | None = None

    def muted(self, now: datetime) -> bool:
        return self.muted_until is not None and self.muted_until > now


@dataclass(frozen=True)
class Outcome:
    """What one check found: the condition was met or not, or an error message."""

    met: bool | None = None
    error: str | None = None
    value: float | None = None


@dataclass(frozen=True)
class Transition:
    #: ``check`` (nothing changed that anyone is told about) or fired / rearmed / recovered / error / resolved
    kind: str
    before: AlertSnapshot
    after: AlertSnapshot
    #: the notification to write (fired, rearmed, recovered, error) or None
    notify: str | None
    note: str | None = None


def _moved(snapshot: AlertSnapshot, state: str, now: datetime) -> AlertSnapshot:
    if snapshot.state == state:
        return snapshot
    return replace(snapshot, state=state, state_changed_at=now)


def next_state(before: AlertSnapshot, policy: AlertPolicy, outcome: Outcome, now: datetime) -> Transition:
    """Apply one check's ``outcome`` to ``before``."""
    muted = policy.muted(now)
    mute_note = f"muted until {policy.muted_until:%Y-%m-%d %H:%M %Z}".strip() if muted else None

    if outcome.error is not None:
        after = replace(
            _moved(before, "error", now),
            consecutive_met=0,
            consecutive_clear=0,
            triggered_since=None,
            incident_notified_at=None,
            last_error=outcome.error,
        )
        if before.state == "error":
            return Transition("check", before, after, None, "still failing")
        notify = None if muted else "error"
        if notify:
            after = replace(after, last_notified_at=now)
        return Transition("error", before, after, notify, mute_note)

    value = outcome.value if outcome.value is not None else before.last_value
    if outcome.met:
        met = before.consecutive_met + 1
        after = replace(before, consecutive_met=met, consecutive_clear=0, last_value=value, last_error=None)
        if before.state == "triggered":
            if before.incident_notified_at is None and not muted:
                after = replace(after, incident_notified_at=now, last_notified_at=now)
                return Transition("fired", before, after, "fired", "notified late: the firing began while muted")
            rearm_due = (
                policy.rearm_seconds is not None
                and before.last_notified_at is not None
                and (now - before.last_notified_at).total_seconds() >= policy.rearm_seconds
            )
            if rearm_due and not muted:
                after = replace(after, last_notified_at=now)
                return Transition("rearmed", before, after, "rearmed")
            return Transition("check", before, after, None, mute_note if rearm_due else None)
        if met >= policy.consecutive_checks:
            after = replace(_moved(after, "triggered", now), triggered_since=now)
            if muted:
                return Transition("fired", before, after, None, mute_note)
            after = replace(after, incident_notified_at=now, last_notified_at=now)
            return Transition("fired", before, after, "fired")
        # pending: met, but not yet for enough checks in a row; not firing, so ok
        pending = f"condition met {met} of {policy.consecutive_checks} consecutive checks"
        kind = "resolved" if before.state == "error" else "check"
        return Transition(kind, before, _moved(after, "ok", now), None, pending)

    clear = before.consecutive_clear + 1
    after = replace(before, consecutive_met=0, consecutive_clear=clear, last_value=value, last_error=None)
    if before.state == "triggered":
        if clear < policy.recovery_checks:
            return Transition(
                "check", before, after, None, f"clear {clear} of {policy.recovery_checks} checks before recovery"
            )
        was_notified = before.incident_notified_at is not None
        after = replace(_moved(after, "ok", now), triggered_since=None, incident_notified_at=None)
        if was_notified and not muted:
            after = replace(after, last_notified_at=now)
            return Transition("recovered", before, after, "recovered")
        return Transition("recovered", before, after, None, mute_note or "the firing was never notified")
    if before.state == "error":
        return Transition("resolved", before, _moved(after, "ok", now), None)
    return Transition("check", before, _moved(after, "ok", now), None)
