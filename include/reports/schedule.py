"""Which cron slot of a report is due: the latest one, once, however many were missed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def check_timezone(name: str, *, report: str | None = None):
    """The ``ZoneInfo`` called ``name``; an unknown zone raises naming the ``timezone`` field."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from include.reports.errors import InvalidReportError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidReportError(
            "timezone", f"{name!r} is not an IANA time zone such as 'Europe/Berlin'", report=report
        ) from None


def check_schedule(schedule: str, *, report: str | None = None) -> str:
    """``schedule`` if it is a valid cron expression (5 fields or an alias such as ``@daily``)."""
    from croniter import croniter

    from include.reports.errors import InvalidReportError

    if not isinstance(schedule, str) or not croniter.is_valid(schedule):
        raise InvalidReportError("schedule", f"{schedule!r} is not a valid cron expression", report=report)
    return schedule


def latest_slot(schedule: str, timezone: str, now: datetime) -> datetime:
    """The latest cron slot at or before ``now``, evaluated in ``timezone``, returned in UTC."""
    from croniter import croniter

    zone = check_timezone(timezone)
    local_now = now.astimezone(zone) + timedelta(microseconds=1)  # a slot exactly at ``now`` counts
    slot = croniter(schedule, local_now).get_prev(datetime)
    return slot.astimezone(UTC)


def due_slot(schedule: str, timezone: str, *, anchor: datetime, now: datetime) -> datetime | None:
    """The slot to generate now, or ``None``.

    ``anchor`` is the last slot already planned (or when the report was created). Only the latest
    slot after it is returned: a report that missed several slots is generated once, not once per slot.
    """
    slot = latest_slot(schedule, timezone, now)
    return slot if slot > anchor else None


def previous_slot(schedule: str, timezone: str, slot: datetime) -> datetime:
    """The cron slot before ``slot`` (evaluated in ``timezone``), in UTC."""
    from croniter import croniter

    zone = check_timezone(timezone)
    return croniter(schedule, slot.astimezone(zone)).get_prev(datetime).astimezone(UTC)
