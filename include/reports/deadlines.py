"""Report delivery deadlines: a run not delivered within its report's ``deadline`` after its slot.

A report's ``deadline`` (``45m``, ``2h``, ``1h30m``; a bare number is minutes) gives each of its
scheduled and on-change runs a ``deadline_at`` (slot + deadline). The ``check_deadlines`` task of
the ``reports`` DAG finds runs past it that were not delivered by then, records the miss on the
run (``deadline_missed_at``, once), counts it (``reports.deadline_missed``) and queues one notice
per owner channel in the alerts' outbox (``analytics_alert_notifications``), which the ``alerts``
DAG sends through the delivery layer like every alert notification. The owner is reached as an
alert's owner is: an email address gets an email (the alerts' email connection); ``slack:#channel``
a Slack message (the alerts' Slack connection).

Why not Airflow's Deadline Alerts: they belong to a DAG run (a reference such as its logical date
plus one interval fixed in the DAG file) and are pruned when that DAG run succeeds; a report's
deadline is per report (a row, not the DAG file) and per slot and audience, and a run is often
delivered by a later DAG run than the one that planned it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from include.reports.errors import InvalidReportError
from observability import metrics

log = logging.getLogger(__name__)

_DEADLINE = re.compile(r"^(?:(?P<hours>\d+)\s*h)?\s*(?:(?P<minutes>\d+)\s*m(?:in)?)?$")
_SLACK_OWNER = re.compile(r"^slack:(#[A-Za-z0-9._-]{1,80}|[A-Z0-9]{9,12})$")
#: Runs past their deadline that one check looks at, oldest deadline first.
CHECK_LIMIT = 500


def parse_deadline(value: Any, *, report: str | None = None, max_days: int) -> int | None:
    """Seconds after the slot from ``45m``, ``2h``, ``1h30m`` or a number of minutes; ``None`` when not set."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    minutes = _minutes(value)
    if minutes is None or not 1 <= minutes <= max_days * 24 * 60:
        raise InvalidReportError(
            "deadline",
            f"expected a time after the slot such as 45m, 2h or 1h30m (1 minute to {max_days} days), got {value!r}",
            report=report,
        )
    return minutes * 60


def _minutes(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    if text.isdigit():
        return int(text)
    match = _DEADLINE.match(text)
    if not match or not (match["hours"] or match["minutes"]):
        return None
    return int(match["hours"] or 0) * 60 + int(match["minutes"] or 0)


def owner_channels(owner: str | None) -> list[tuple[int, dict[str, Any]]]:
    """(channel index, channel) of the owner, as the alerts' outbox sends them; none for an unreachable owner."""
    from include.alerts.settings import DEFAULT_CONNECTIONS

    owner = (owner or "").strip()
    if "@" in owner:
        return [(-1, {"type": "email", "connection": DEFAULT_CONNECTIONS["email"], "to": [owner]})]
    slack = _SLACK_OWNER.match(owner)
    if slack:
        return [(-2, {"type": "slack", "channel": slack[1]})]
    return []


def check_deadline_owner(owner: str | None, *, report: str | None = None) -> None:
    """A report with a deadline needs an owner the miss can be told to."""
    if not owner_channels(owner):
        raise InvalidReportError(
            "owner",
            f"a report with a deadline tells its owner when a run misses it: expected an email address or "
            f"slack:#channel, got {owner!r}",
            report=report,
        )


def _describe(run: Mapping[str, Any]) -> tuple[str, str]:
    """The notice's subject and text."""
    audience = f" (audience {run['audience']})" if run["audience"] else ""
    name = f"{run['report_name']!r}{audience}"
    due = f"{run['deadline_at']:%Y-%m-%d %H:%M} UTC"
    minutes = int((run["deadline_at"] - run["slot"]).total_seconds() // 60)
    if run["status"] == "delivered":
        now = f"it was delivered late, at {run['finished_at']:%Y-%m-%d %H:%M} UTC"
    elif run["status"] == "failed":
        now = f"it failed: {run['error']}"
    else:
        now = f"it is {run['status']}" + (f" (last error: {run['error']})" if run["error"] else "")
    subject = f"Report {name} missed its delivery deadline ({due})"
    text = (
        f"Report {name}, slot {run['slot']:%Y-%m-%d %H:%M} UTC (run {run['id']}), was not delivered by its deadline "
        f"{due}, {minutes} minutes after its slot; {now}. See `python -m include reports runs --report "
        f"{run['report_name']!r}`."
    )
    return subject, text


def _payload(channel_type: str, run: Mapping[str, Any]) -> dict[str, Any]:
    import html

    subject, text = _describe(run)
    if channel_type == "slack":
        return {"text": f":alarm_clock: {subject}\n{text}", "blocks": []}
    return {"subject": subject, "text": text, "html": f"<p><b>{html.escape(subject)}</b></p><p>{html.escape(text)}</p>"}


def _record_miss(conn, run: Mapping[str, Any]) -> tuple[bool, int]:
    """Mark the run's miss and queue the owner's notices, in the caller's transaction: (recorded, notices)."""
    from include.reports.run_store import one

    if one(conn, "mark_deadline_missed", {"run_id": run["id"]}) is None:
        return False, 0
    queued = 0
    for index, channel in owner_channels(run["owner"]):
        params = {
            "report_run_id": run["id"],
            "channel_index": index,
            "channel_type": channel["type"],
            "channel": json.dumps(channel),
            "payload": json.dumps(_payload(channel["type"], run)),
        }
        queued += one(conn, "insert_deadline_notice", params) is not None
    return True, queued


def check_deadlines(services=None) -> dict[str, Any]:
    """Record every run past its deadline and not delivered by it, once; queue its owner's notice."""
    from include.reports.config import OPEN_RUN_MAX_AGE_DAYS
    from include.reports.run_store import Services, rows

    ctx = services or Services.create()
    missed, unreachable = [], []
    with ctx.hook.transaction() as conn:
        found = rows(conn, "select_missed_deadlines", {"max_age_days": OPEN_RUN_MAX_AGE_DAYS, "limit": CHECK_LIMIT})
        for run in found:
            recorded, queued = _record_miss(conn, run)
            if not recorded:
                continue
            state = "late" if run["status"] == "delivered" else run["status"]
            metrics.incr("reports.deadline_missed", state=state)
            missed.append(run["id"])
            if not queued:
                unreachable.append(run["id"])
            log.warning("%s", _describe(run)[1])
    for run_id in unreachable:
        log.error("report run %s missed its deadline and its report's owner cannot be told (no email or slack)", run_id)
    return {"missed": missed, "owner_not_told": unreachable}
