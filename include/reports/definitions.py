"""Report definitions and ad-hoc requests: parsing and validation with errors that name the field."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from include.reports.charts import CHART_FORMATS, ChartSpec, parse_chart
from include.reports.errors import InvalidReportError
from include.reports.limits import check_run_timeout
from include.reports.targets import Destination, check_recipients, check_slack_channels, parse_destination

if TYPE_CHECKING:
    from include.reports.audiences import Audience

FORMATS = ("csv", "csv.gz", "xlsx", *CHART_FORMATS)
#: The ``schedule`` of a report generated after each change of what it reads (include/reports/data_schedule.py).
ON_CHANGE = "on_change"
#: Fields an ad-hoc trigger may set (``airflow dags trigger reports --conf '{...}'`` or the UI form).
REQUEST_FIELDS = (
    "report_id",
    "report_name",
    "sql",
    "parameters",
    "format",
    "chart",
    "recipients",
    "destination",
    "slack_channels",
    "name",
    "audience",
)


@dataclass(frozen=True)
class ReportDefinition:
    """What to run and where to send it: a row of ``analytics_reports`` or an ad-hoc request."""

    name: str
    sql: str
    id: int | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    format: str = "csv"
    schedule: str | None = None
    timezone: str = "UTC"
    recipients: tuple[str, ...] = ()
    destinations: tuple[Destination, ...] = ()
    retention_days: int = 30
    owner: str | None = None
    enabled: bool = True
    statement_timeout_seconds: int | None = None
    file_timeout_seconds: int | None = None
    run_timeout_seconds: int | None = None
    max_attachment_bytes: int | None = None
    email_subject: str | None = None
    chart: ChartSpec | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    #: with a cron ``schedule``: a slot waits for its data (include/reports/data_schedule.py)
    wait_for_data: bool = False
    #: how long after its slot it waits at most (``None``: the default of data_schedule)
    data_wait_limit_seconds: int | None = None
    #: the relations it reads (``schema.table``), found by the planning; when each last changed
    reads: tuple[str, ...] = ()
    reads_changed_at: Mapping[str, str] = field(default_factory=dict)
    #: who receives one file each, with their own parameter values (include/reports/audiences.py)
    audiences: tuple[Audience, ...] = ()
    #: seconds after its slot by which a scheduled run must be delivered (include/reports/deadlines.py)
    deadline_seconds: int | None = None


@dataclass(frozen=True)
class ReportRequest:
    """A validated DAG run request: ``mode`` is ``scheduled``, ``report`` (stored report) or ``inline``."""

    mode: str
    report_id: int | None = None
    report_name: str | None = None
    sql: str | None = None
    parameters: Mapping[str, Any] | None = None
    format: str | None = None
    chart: ChartSpec | None = None
    recipients: tuple[str, ...] | None = None
    destination: Destination | None = None
    #: Slack destinations (``slack:#channel``) of the trigger; a stored report's Slack channels are replaced
    slack_channels: tuple[Destination, ...] | None = None
    name: str | None = None
    #: of a stored report with audiences: generate only this audience's file
    audience: str | None = None

    def apply_overrides(self, definition: ReportDefinition) -> ReportDefinition:
        """The stored definition with this request's format, chart, recipients, destination and parameters.

        A report with audiences keeps each audience's own parameter values (an override never
        widens what an audience receives); ``audience`` picks one, and only with it may the
        trigger send that audience's file to other recipients or a destination.
        """
        changes: dict[str, Any] = {}
        if self.format is not None:
            changes["format"] = self.format
        if self.chart is not None:
            changes["chart"] = self.chart
        if self.parameters:
            changes["parameters"] = {**definition.parameters, **self.parameters}
        if definition.audiences or self.audience is not None:
            changes["audiences"] = self._audiences(definition)
        else:
            if self.recipients is not None:
                changes["recipients"] = self.recipients
            if self.destination is not None or self.slack_channels is not None:
                changes["destinations"] = self._destinations(definition.destinations)
        return replace(definition, **changes)

    def _destinations(self, current: Sequence[Destination]) -> tuple[Destination, ...]:
        """``current`` with the trigger's object storage destination and Slack channels in place of its own."""
        storage = [d for d in current if not d.is_slack]
        slack = [d for d in current if d.is_slack]
        return (
            *((self.destination,) if self.destination is not None else storage),
            *(self.slack_channels if self.slack_channels is not None else slack),
        )

    def _audiences(self, definition: ReportDefinition) -> tuple[Audience, ...]:
        names = [a.name for a in definition.audiences]
        elsewhere = {
            "recipients": self.recipients,
            "destination": self.destination,
            "slack_channels": self.slack_channels,
        }
        given = [name for name, value in elsewhere.items() if value is not None]
        if self.audience is None:
            if given:
                field_name = given[0]
                raise InvalidReportError(
                    field_name,
                    f"the report sends to its audiences {names}; name one in 'audience' to send it elsewhere",
                )
            return definition.audiences
        chosen = next((a for a in definition.audiences if a.name == self.audience), None)
        if chosen is None:
            raise InvalidReportError(
                "audience", f"report {definition.name!r} has no audience {self.audience!r}; its audiences: {names}"
            )
        if given:  # the audience's file goes to exactly what the trigger names
            destinations = (*((self.destination,) if self.destination else ()), *(self.slack_channels or ()))
            chosen = replace(chosen, recipients=self.recipients or (), destinations=destinations)
        return (chosen,)

    def inline_definition(self) -> ReportDefinition:
        return ReportDefinition(
            name=self.name or "adhoc",
            sql=self.sql or "",
            parameters=dict(self.parameters or {}),
            format=self.format or "csv",
            chart=self.chart,
            recipients=self.recipients or (),
            destinations=(*((self.destination,) if self.destination else ()), *(self.slack_channels or ())),
            retention_days=7,
        )


def strip_sql(sql: str) -> str:
    """The SQL without surrounding whitespace and trailing semicolons."""
    return sql.strip().rstrip(";").rstrip()


# --------------------------------------------------------------------------- field validators


def _check_format(value: Any, *, field: str = "format", report: str | None = None) -> str:
    if value not in FORMATS:
        raise InvalidReportError(
            field, f"{value!r} is not a report format; expected one of {list(FORMATS)}", report=report
        )
    return value


def check_chart_required(fmt: str, chart: ChartSpec | None, *, report: str | None = None) -> None:
    """A ``png`` or ``pdf`` report draws its chart: it must have one."""
    if fmt in CHART_FORMATS and chart is None:
        raise InvalidReportError(
            "chart",
            f"format {fmt!r} draws the report's chart; give a chart spec such as "
            '{"kind": "line", "x": "day", "y": "amount"}',
            report=report,
        )


def _check_parameters(value: Any, *, field: str = "parameters", report: str | None = None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidReportError(
            field, f"expected a JSON object of named parameters, got {type(value).__name__}", report=report
        )
    for key in value:
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise InvalidReportError(field, f"parameter name {key!r} is not an identifier", report=report)
    return dict(value)


def _check_sql(value: Any, *, field: str = "sql", report: str | None = None) -> str:
    if not isinstance(value, str) or not strip_sql(value):
        raise InvalidReportError(field, "expected the text of one SELECT statement", report=report)
    return strip_sql(value)


# --------------------------------------------------------------------------- definitions


def definition_from_row(row: Mapping[str, Any]) -> ReportDefinition:
    """Build and validate a definition from an ``analytics_reports`` row."""
    name = row["name"]
    destinations = row.get("destinations") or []
    if not isinstance(destinations, list):
        raise InvalidReportError("destinations", "expected a JSON array", report=name)
    definition = ReportDefinition(
        id=row.get("id"),
        name=name,
        sql=row.get("sql") or "",
        parameters=row.get("parameters") or {},
        format=row.get("format") or "csv",
        schedule=row.get("schedule"),
        timezone=row.get("timezone") or "UTC",
        recipients=tuple(row.get("recipients") or ()),
        destinations=tuple(parse_destination(d, report=name) for d in destinations),
        retention_days=row.get("retention_days") or 30,
        owner=row.get("owner"),
        enabled=row.get("enabled", True),
        statement_timeout_seconds=row.get("statement_timeout_seconds"),
        file_timeout_seconds=row.get("file_timeout_seconds"),
        run_timeout_seconds=row.get("run_timeout_seconds"),
        max_attachment_bytes=row.get("max_attachment_bytes"),
        email_subject=row.get("email_subject"),
        chart=parse_chart(row.get("chart"), report=name),
        created_at=row.get("created_at"),
        updated_at=row.get("updated_at"),
        wait_for_data=bool(row.get("wait_for_data")),
        data_wait_limit_seconds=row.get("data_wait_limit_seconds"),
        reads=tuple(row.get("reads") or ()),
        reads_changed_at=dict(row.get("reads_changed_at") or {}),
        deadline_seconds=_deadline(row.get("deadline"), report=name),
    )
    return validate_definition(definition, audiences=row.get("audiences"))


def _deadline(value: Any, *, report: str) -> int | None:
    from include.reports.config import OPEN_RUN_MAX_AGE_DAYS
    from include.reports.deadlines import parse_deadline

    return parse_deadline(value, report=report, max_days=OPEN_RUN_MAX_AGE_DAYS)


def _check_deadline(definition: ReportDefinition) -> None:
    """A deadline is for scheduled runs, and needs an owner to tell when a run misses it."""
    from include.reports.deadlines import check_deadline_owner

    if definition.deadline_seconds is None:
        return
    if definition.schedule is None:
        raise InvalidReportError(
            "deadline", "a deadline counts from a run's slot: the report needs a schedule", report=definition.name
        )
    check_deadline_owner(definition.owner, report=definition.name)


def _check_data_schedule(definition: ReportDefinition) -> None:
    """``wait_for_data`` needs a cron schedule; a data wait limit is a positive number of seconds."""
    if definition.wait_for_data and definition.schedule in (None, ON_CHANGE):
        raise InvalidReportError(
            "wait_for_data", "a report waits for its data only with a cron schedule", report=definition.name
        )
    limit = definition.data_wait_limit_seconds
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise InvalidReportError(
            "data_wait_limit_seconds", f"expected a positive number of seconds, got {limit!r}", report=definition.name
        )


def _check_audiences(definition: ReportDefinition, value: Any, sql: str, parameters: Mapping[str, Any]) -> tuple:
    """The audiences, each checked against the SQL; with audiences the report itself sends to nobody else."""
    from include.reports.audiences import parse_audiences

    name = definition.name
    audiences = parse_audiences(value, sql=sql, parameters=parameters, report=name)
    if audiences and (definition.recipients or definition.destinations):
        field_name = "recipients" if definition.recipients else "destinations"
        raise InvalidReportError(
            field_name, "a report with audiences sends to its audiences only; move these into an audience", report=name
        )
    return audiences


def validate_definition(definition: ReportDefinition, *, audiences: Any = None) -> ReportDefinition:
    """Check every field; return the definition with normalised SQL and recipients.

    ``audiences``: the raw ``audiences`` of a row (default: the definition's own, checked again).
    """
    from include.reports.schedule import check_schedule, check_timezone

    name = definition.name
    if not isinstance(name, str) or not name.strip():
        raise InvalidReportError("name", "a report needs a name")
    sql = _check_sql(definition.sql, report=name)
    _check_format(definition.format, report=name)
    check_chart_required(definition.format, definition.chart, report=name)
    parameters = _check_parameters(definition.parameters, report=name)
    recipients = check_recipients(definition.recipients, report=name)
    check_timezone(definition.timezone, report=name)
    _check_data_schedule(definition)
    _check_deadline(definition)
    if definition.schedule not in (None, ON_CHANGE):
        check_schedule(definition.schedule, report=name)
    if not isinstance(definition.retention_days, int) or definition.retention_days < 1:
        raise InvalidReportError("retention_days", "expected a positive number of days", report=name)
    if definition.run_timeout_seconds is not None:
        check_run_timeout(definition.run_timeout_seconds, field="run_timeout_seconds", report=name)
    raw_audiences = audiences if audiences is not None else (list(definition.audiences) or None)
    checked = _check_audiences(definition, raw_audiences, sql, parameters)
    return replace(definition, sql=sql, parameters=parameters, recipients=recipients, audiences=checked)


# --------------------------------------------------------------------------- ad-hoc requests


def parse_request(conf: Mapping[str, Any] | None) -> ReportRequest:
    """Validate a DAG run's Params (what ``--conf`` or the UI's trigger form sent, over the defaults) into a request.

    No report, no SQL: a scheduled run. ``report_id`` or ``report_name``: that stored report now,
    with optional ``format``, ``chart``, ``recipients``, ``destination``, ``slack_channels`` and
    ``parameters`` overrides. ``sql``: an ad-hoc query with its own ``format``, ``chart``,
    ``recipients``, ``destination``, ``slack_channels`` and ``name``.
    The DAG's Params (all defaulting to empty) have already checked the types when the run was
    created; this checks what they cannot: unknown fields, combinations, addresses, URLs.
    """
    conf = conf or {}
    unknown = sorted(set(conf) - set(REQUEST_FIELDS))
    if unknown:
        raise InvalidReportError(unknown[0], f"unknown field; expected one of {list(REQUEST_FIELDS)}")
    values = {key: conf.get(key) for key in REQUEST_FIELDS}
    for key in ("report_name", "sql", "name", "format", "destination", "audience"):
        if isinstance(values[key], str) and not values[key].strip():
            values[key] = None  # an emptied form field means "not given"
    if values["recipients"] == []:
        values["recipients"] = None

    report_id = values["report_id"]
    if report_id is not None and (isinstance(report_id, bool) or not isinstance(report_id, int) or report_id < 1):
        raise InvalidReportError("report_id", f"expected a positive integer, got {report_id!r}")
    report_name = values["report_name"]
    if report_name is not None and not isinstance(report_name, str):
        raise InvalidReportError("report_name", f"expected a string, got {report_name!r}")
    if report_id is not None and report_name is not None:
        raise InvalidReportError("report_name", "give report_id or report_name, not both")
    sql = values["sql"]
    if sql is not None and (report_id is not None or report_name is not None):
        raise InvalidReportError("sql", "sql is for ad-hoc queries; leave it empty when naming a stored report")

    fmt = _check_format(values["format"]) if values["format"] is not None else None
    chart = parse_chart(values["chart"] or None)
    recipients = check_recipients(values["recipients"]) if values["recipients"] is not None else None
    destination = parse_destination(values["destination"], field="destination") if values["destination"] else None
    slack_channels = check_slack_channels(values["slack_channels"])
    if destination is not None and destination.is_slack:  # "slack:#x" in the destination field
        slack_channels, destination = (*(slack_channels or ()), destination), None
    parameters = _check_parameters(values["parameters"])
    name = values["name"]
    if name is not None and not isinstance(name, str):
        raise InvalidReportError("name", f"expected a string, got {name!r}")
    audience = values["audience"]
    if audience is not None and (not isinstance(audience, str) or (report_id is None and report_name is None)):
        raise InvalidReportError("audience", "names an audience of the stored report given by report_id or report_name")

    if sql is not None:
        check_chart_required(fmt or "csv", chart)
        return ReportRequest(
            mode="inline",
            sql=_check_sql(sql),
            parameters=parameters,
            format=fmt,
            chart=chart,
            recipients=recipients,
            destination=destination,
            slack_channels=slack_channels,
            name=name,
        )
    if report_id is not None or report_name is not None:
        return ReportRequest(
            mode="report",
            report_id=report_id,
            report_name=report_name,
            parameters=parameters,
            format=fmt,
            chart=chart,
            recipients=recipients,
            destination=destination,
            slack_channels=slack_channels,
            audience=audience,
        )
    given = [key for key in ("format", "chart", "recipients", "destination", "slack_channels", "name") if values[key]]
    if given or parameters:
        field_name = given[0] if given else "parameters"
        raise InvalidReportError(field_name, "needs report_id, report_name or sql to say which report to run")
    return ReportRequest(mode="scheduled")
