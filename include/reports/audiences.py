"""Report audiences: one run of a report, one file per audience with its own parameter values.

An audience is a named set of recipients (email addresses, destinations) with its own values of
the report SQL's ``%(name)s`` placeholders (``{"region": "EU"}``), so each audience receives only
its rows. The values are bound by psycopg like every report parameter (never pasted into the SQL)
and the SQL runs on the reader connection. Planning makes one run per report, slot and audience
(:mod:`include.reports.planning`): each is generated and delivered on its own, so a failing
audience never stops the others and is retried alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from include.reports.errors import InvalidReportError

if TYPE_CHECKING:
    from include.reports.targets import Destination

#: The keys an audience may have.
AUDIENCE_FIELDS = ("name", "recipients", "destinations", "params")
#: A placeholder every report has: the schedule slot (no audience sets it).
SLOT_PARAMETER = "slot"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_PLACEHOLDER = re.compile(r"%\(([^)]*)\)s")
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Audience:
    """Who receives one file of a report run, and the parameter values that select its rows."""

    name: str
    recipients: tuple[str, ...] = ()
    destinations: tuple[Destination, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "recipients": list(self.recipients),
            "destinations": [d.as_json() for d in self.destinations],
            "params": dict(self.params),
        }


def placeholders(sql: str) -> set[str]:
    """The names of the ``%(name)s`` placeholders of ``sql`` (``%%`` is a literal percent sign)."""
    return set(_PLACEHOLDER.findall(sql.replace("%%", "")))


def parse_audiences(
    value: Any, *, sql: str, parameters: Mapping[str, Any], report: str | None = None
) -> tuple[Audience, ...]:
    """Validate ``audiences`` (a JSON array) against the report's SQL and its own ``parameters``.

    Errors name the field: ``audiences[1].params.region``, ``audiences[0].recipients``...
    """
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise InvalidReportError(
            "audiences", f"expected a JSON array of audiences, got {type(value).__name__}", report=report
        )
    if not value:
        raise InvalidReportError(
            "audiences", "an empty list; leave audiences out for a report without any", report=report
        )
    names = placeholders(sql)
    audiences = tuple(
        _parse_one(item, i, names=names, parameters=parameters, report=report) for i, item in enumerate(value)
    )
    seen: dict[str, int] = {}
    for i, audience in enumerate(audiences):
        if audience.name in seen:
            raise InvalidReportError(
                f"audiences[{i}].name", f"{audience.name!r} is also audiences[{seen[audience.name]}]", report=report
            )
        seen[audience.name] = i
    return audiences


def _parse_one(
    item: Any, index: int, *, names: set[str], parameters: Mapping[str, Any], report: str | None
) -> Audience:
    from include.reports.targets import check_recipients, parse_destination

    where = f"audiences[{index}]"
    if isinstance(item, Audience):
        item = item.as_json()
    if not isinstance(item, Mapping):
        raise InvalidReportError(where, f"expected an object with {list(AUDIENCE_FIELDS)}", report=report)
    unknown = sorted(set(item) - set(AUDIENCE_FIELDS))
    if unknown:
        raise InvalidReportError(
            f"{where}.{unknown[0]}", f"unknown field; expected one of {list(AUDIENCE_FIELDS)}", report=report
        )
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidReportError(
            f"{where}.name",
            f"expected a name of letters, digits, '_', '.' or '-' (at most 63), got {name!r}",
            report=report,
        )
    recipients = check_recipients(item.get("recipients") or [], field=f"{where}.recipients", report=report)
    destinations = item.get("destinations") or []
    if not isinstance(destinations, Sequence) or isinstance(destinations, str):
        raise InvalidReportError(f"{where}.destinations", "expected a JSON array", report=report)
    parsed = tuple(
        parse_destination(d, field=f"{where}.destinations[{i}]", report=report) for i, d in enumerate(destinations)
    )
    if not recipients and not parsed:
        raise InvalidReportError(where, f"audience {name!r} has no recipients and no destinations", report=report)
    params = _check_params(item.get("params"), where=f"{where}.params", names=names, report=report)
    missing = sorted(names - {SLOT_PARAMETER} - set(parameters) - set(params))
    if missing:
        raise InvalidReportError(
            f"{where}.params.{missing[0]}",
            f"the report's SQL uses %({missing[0]})s; give it a value in the audience or the report's parameters",
            report=report,
        )
    return Audience(name=name, recipients=recipients, destinations=parsed, params=params)


def _check_params(value: Any, *, where: str, names: set[str], report: str | None) -> dict[str, Any]:
    """Values of placeholders the SQL has: JSON scalars, or arrays of them (bound as SQL arrays)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidReportError(
            where, f"expected a JSON object of parameter values, got {type(value).__name__}", report=report
        )
    for key, item in value.items():
        if key == SLOT_PARAMETER:
            raise InvalidReportError(
                f"{where}.{key}", "the slot is the schedule's; an audience cannot set it", report=report
            )
        if key not in names:
            raise InvalidReportError(
                f"{where}.{key}",
                f"the report's SQL has no %({key})s placeholder; its placeholders: {sorted(names) or 'none'}",
                report=report,
            )
        if not isinstance(item, _SCALARS) and not (
            isinstance(item, list) and all(isinstance(v, _SCALARS) for v in item)
        ):
            raise InvalidReportError(
                f"{where}.{key}",
                f"expected a string, number, boolean, null or an array of them, got {item!r}",
                report=report,
            )
    return dict(value)
