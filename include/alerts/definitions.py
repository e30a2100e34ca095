"""Alert definitions: the model, validation (JSON Schema + rules), and YAML files kept as code.

A YAML file holds a top-level ``alerts`` list (see ``alert.schema.json``). Every problem is
reported as a :class:`DefinitionError` naming the file, the alert and the field, so one bad alert
never hides the others.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from include.alerts.conditions import CHANGE_CHECKS, needs_threshold, normalize_condition
from include.alerts.settings import DEFAULT_CONNECTIONS, AlertSettings

SCHEMA_PATH = Path(__file__).resolve().parent / "alert.schema.json"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
_DURATION = re.compile(r"^\s*(?P<n>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: When an alert is evaluated unless its definition says otherwise (``schedule``).
SCHEDULES = ("clock", "on_change", "clock_and_change")
DEFAULT_SCHEDULE = "clock_and_change"


@dataclass(frozen=True)
class DefinitionError:
    """One problem with one alert definition."""

    source: str  # a file path, or "params" / "cli"
    alert: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = [self.source]
        if self.alert:
            where.append(f"alert {self.alert!r}")
        if self.field:
            where.append(f"field {self.field!r}")
        return f"{': '.join(where)}: {self.message}"


class InvalidDefinition(ValueError):
    """Raised when a single definition (from the CLI or the trigger form) is invalid."""

    def __init__(self, errors: list[DefinitionError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class AlertDefinition:
    """What an alert is: the columns of ``analytics_alerts`` a definition sets."""

    name: str
    sql: str
    condition: str
    threshold: float | None = None
    description: str | None = None
    severity: str = "warning"
    owner: str | None = None
    enabled: bool = True
    channels: list[dict[str, Any]] = field(default_factory=list)
    consecutive_checks: int = 1
    recovery_checks: int = 1
    rearm_seconds: int | None = None
    check_interval_seconds: int | None = None
    timeout_seconds: float = 30.0
    muted_until: datetime | None = None
    dry_run: bool = False
    log_retention_days: int = 90
    subject_template: str | None = None
    message_template: str | None = None
    #: when it is evaluated: ``clock``, ``on_change`` (after a change of what it reads) or ``clock_and_change``
    schedule: str = DEFAULT_SCHEDULE
    #: the relations it reads (``schema.table``), when declared; ``None``: found from its SQL
    declared_reads: list[str] | None = None

    def row(self) -> dict[str, Any]:
        """Column values for an insert/update (channels as JSON)."""
        data = asdict(self)
        data["channels"] = json.dumps(self.channels)
        data["definition_hash"] = self.definition_hash()
        return data

    def definition_hash(self) -> str:
        data = asdict(self)
        data["muted_until"] = self.muted_until.isoformat() if self.muted_until else None
        # fields added later count only when set, so definitions written before them keep their hash
        for name, default in _LATER_FIELDS.items():
            if data[name] == default:
                del data[name]
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


#: Fields added after definitions were first stored, with the value that leaves an old hash unchanged.
_LATER_FIELDS: dict[str, Any] = {"schedule": DEFAULT_SCHEDULE, "declared_reads": None}


@cache
def alert_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like ``"90s"``, ``"15m"``, ``"2h"``, ``"1d"``."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ValueError(f"duration must be positive, got {value!r}")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration; use seconds or a string such as '90s', '15m', '2h', '1d'")
    return float(match["n"]) * _UNIT_SECONDS[match["unit"]]


def _plain(value: Any) -> Any:
    """YAML dates and datetimes as ISO strings, so the JSON Schema sees what a JSON file would hold."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _field_path(path: Iterable[Any]) -> str | None:
    parts: list[str] = []
    for item in path:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts) or None


def schema_errors(alert: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    """(field, message) for every JSON Schema violation of one alert object."""
    from jsonschema import Draft202012Validator

    schema = alert_schema()
    validator = Draft202012Validator({**schema["$defs"]["alert"], "$defs": schema["$defs"]})
    problems = []
    for error in sorted(validator.iter_errors(alert), key=lambda e: list(map(str, e.absolute_path))):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties" and not path:
            extra = sorted(set(alert) - set(schema["$defs"]["alert"]["properties"]))
            for name in extra:
                problems.append((name, "unknown field"))
            continue
        if error.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", error.message)
            problems.append((_field_path([*path, *missing]), "is required"))
            continue
        problems.append((_field_path(path), _short(error)))
    return problems


def _short(error: Any) -> str:
    if error.validator == "pattern" and list(error.absolute_path)[-1:] == ["endpoint"]:
        return (
            f"{error.instance!r} is not a path under the webhook connection's base URL: give a relative path "
            "such as /alerts/orders (no scheme or host, no '.' or '..' segment, no encoded '.', '/' or '\\')"
        )
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "oneOf" and error.context:
        return "; or ".join(sorted({c.message for c in error.context}))
    return error.message


def rule_errors(alert: Mapping[str, Any], settings: AlertSettings) -> list[tuple[str | None, str]]:
    """(field, message) for the rules a schema cannot express."""
    problems: list[tuple[str | None, str]] = []
    try:
        condition = normalize_condition(alert.get("condition", ""))
    except ValueError as error:
        return [("condition", str(error))]
    threshold = alert.get("threshold")
    if needs_threshold(condition) and threshold is None:
        problems.append(("threshold", f"condition {condition!r} needs a threshold"))
    if condition in CHANGE_CHECKS and threshold is not None and threshold <= 0:
        problems.append(("threshold", "a percentage change threshold must be positive"))
    sql = str(alert.get("sql") or "")
    statements = _statements(sql)
    if len(statements) != 1:
        problems.append(("sql", f"must be exactly one statement, found {len(statements)}"))
    else:
        problems += _query_problems(sql)
    problems += _template_problems(alert)
    problems += _reads_problems(alert.get("reads"))
    problems += _recipient_problems(alert.get("channels") or [])
    for name, low, high in (
        ("check_interval", settings.minimum_interval, None),
        ("timeout", None, settings.max_timeout),
        ("rearm", None, None),
    ):
        if alert.get(name) is None:
            continue
        try:
            seconds = parse_duration(alert[name])
        except ValueError as error:
            problems.append((name, str(error)))
            continue
        if low is not None and seconds < low:
            problems.append((name, f"{seconds:g}s is below the minimum interval of {low:g}s"))
        if high is not None and seconds > high:
            problems.append((name, f"{seconds:g}s is above the maximum of {high:g}s"))
    muted = alert.get("muted_until")
    if muted not in (None, ""):
        try:
            _parse_datetime(muted)
        except ValueError:
            problems.append(("muted_until", f"{muted!r} is not an ISO 8601 date-time"))
    return problems


def _query_problems(sql: str) -> list[tuple[str | None, str]]:
    """Alert SQL is a query: COPY, DO, CALL, SET... are refused here already (and again before running)."""
    from hooks.warehouse import READ_STATEMENTS, leading_keyword

    keyword = leading_keyword(sql)
    if keyword in READ_STATEMENTS:
        return []
    return [("sql", f"must be one query ({', '.join(READ_STATEMENTS)}); {keyword or 'empty'} statements never run")]


def _template_problems(alert: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    """Each template compiles, and renders within its limits with every variable set."""
    from include.alerts.messages import sample_context
    from include.alerts.templates import TemplateError, render

    problems: list[tuple[str | None, str]] = []
    templates = [f for f in ("subject_template", "message_template") if alert.get(f)]
    if not templates:
        return problems
    variables = sample_context(
        str(alert.get("name") or "alert"), str(alert.get("severity") or "warning"), str(alert.get("condition") or ">")
    ).variables()
    for field_name in templates:
        try:
            render(str(alert[field_name]), variables)
        except TemplateError as error:
            problems.append((field_name, f"the template is refused: {error}"))
    return problems


def _reads_problems(reads: Any) -> list[tuple[str | None, str]]:
    """Each declared relation is ``schema.table``."""
    from include.lineage.assets import Relation

    problems: list[tuple[str | None, str]] = []
    for index, key in enumerate(reads or []):
        try:
            Relation.from_key(key)
        except ValueError as error:
            problems.append((f"reads[{index}]", str(error)))
    return problems


def _recipient_problems(channels: Iterable[Any]) -> list[tuple[str | None, str]]:
    from include.settings import MAX_RECIPIENTS

    problems: list[tuple[str | None, str]] = []
    for index, channel in enumerate(channels):
        to = channel.get("to") if isinstance(channel, Mapping) else None
        if isinstance(to, list) and len(to) > MAX_RECIPIENTS:
            problems.append(
                (f"channels[{index}].to", f"{len(to)} recipients; an email channel has at most {MAX_RECIPIENTS}")
            )
    return problems


def _statements(sql: str) -> list[str]:
    import sqlparse

    return [s for s in sqlparse.split(sql) if s.strip().rstrip(";").strip()]


def _parse_datetime(value: Any) -> datetime:
    """An aware datetime from an ISO 8601 string (no zone = UTC)."""
    from datetime import UTC

    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _channels(raw: list[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    channels = []
    for entry in raw or []:
        channel = {k: v for k, v in entry.items() if v not in (None, "")}
        channel.setdefault("connection", DEFAULT_CONNECTIONS[channel["type"]])
        if channel["type"] == "email" and isinstance(channel.get("to"), str):
            channel["to"] = [channel["to"]]
        channels.append(channel)
    return channels


def build_definition(alert: Mapping[str, Any]) -> AlertDefinition:
    """An :class:`AlertDefinition` from an alert object that passed validation.

    A field the alert leaves out keeps :class:`AlertDefinition`'s default (the one place it is set).
    """
    duration = {k: parse_duration(alert[k]) for k in ("rearm", "check_interval", "timeout") if alert.get(k) is not None}
    muted = alert.get("muted_until")
    converters = {
        "description": str,
        "severity": str,
        "owner": str,
        "enabled": bool,
        "consecutive_checks": int,
        "recovery_checks": int,
        "dry_run": bool,
        "log_retention_days": int,
        "subject_template": str,
        "message_template": str,
        "schedule": str,
    }
    given = {key: convert(alert[key]) for key, convert in converters.items() if alert.get(key) is not None}
    if "timeout" in duration:
        given["timeout_seconds"] = duration["timeout"]
    return AlertDefinition(
        name=alert["name"],
        sql=str(alert["sql"]).strip().rstrip(";").strip(),
        condition=normalize_condition(alert["condition"]),
        threshold=float(alert["threshold"]) if alert.get("threshold") is not None else None,
        channels=_channels(alert.get("channels")),
        rearm_seconds=round(duration["rearm"]) if "rearm" in duration else None,
        check_interval_seconds=round(duration["check_interval"]) if "check_interval" in duration else None,
        muted_until=_parse_datetime(muted) if muted not in (None, "") else None,
        declared_reads=sorted(set(alert["reads"])) if alert.get("reads") else None,
        **given,
    )


def validate_alert(
    alert: Mapping[str, Any], source: str, settings: AlertSettings | None = None
) -> tuple[AlertDefinition | None, list[DefinitionError]]:
    """Validate one alert object; return the definition, or None and every error found."""
    settings = settings or AlertSettings.from_env()
    alert = _plain(alert)
    name = alert.get("name") if isinstance(alert, Mapping) and isinstance(alert.get("name"), str) else None
    if not isinstance(alert, Mapping):
        return None, [DefinitionError(source, None, None, f"an alert must be a mapping, got {type(alert).__name__}")]
    problems = schema_errors(alert)
    if not problems:
        problems = rule_errors(alert, settings)
    if problems:
        return None, [DefinitionError(source, name, field_name, message) for field_name, message in problems]
    return build_definition(alert), []


def validate_single(alert: Mapping[str, Any], source: str, settings: AlertSettings | None = None) -> AlertDefinition:
    """Validate one alert; raise :class:`InvalidDefinition` listing every problem."""
    definition, errors = validate_alert(alert, source, settings)
    if errors or definition is None:
        raise InvalidDefinition(errors)
    return definition


@dataclass
class LoadedDefinitions:
    """The result of reading every YAML file: valid definitions, errors, and files that failed whole."""

    definitions: list[tuple[str, AlertDefinition]] = field(default_factory=list)  # (file, definition)
    errors: list[DefinitionError] = field(default_factory=list)
    #: files whose alerts could not all be read: their alerts already in the table are left alone
    unreadable_files: set[str] = field(default_factory=set)
    failed_names: set[str] = field(default_factory=set)


def definition_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted([*directory.rglob("*.yaml"), *directory.rglob("*.yml")])


def load_definitions(
    directory: Path, settings: AlertSettings | None = None, root: Path | None = None
) -> LoadedDefinitions:
    """Read and validate every ``*.yaml`` / ``*.yml`` under ``directory``."""
    import yaml

    settings = settings or AlertSettings.from_env()
    result = LoadedDefinitions()
    seen: dict[str, str] = {}
    for path in definition_files(directory):
        source = _display_path(path, root or directory)
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            detail = " ".join(str(error).split())  # one line: PyYAML's message spans several
            result.errors.append(DefinitionError(source, None, None, f"not valid YAML: {detail}"))
            result.unreadable_files.add(source)
            continue
        alerts = document.get("alerts") if isinstance(document, Mapping) else None
        if not isinstance(document, Mapping) or set(document) != {"alerts"} or not isinstance(alerts, list):
            result.errors.append(
                DefinitionError(
                    source, None, "alerts", "the file must hold one top-level 'alerts' list and nothing else"
                )
            )
            result.unreadable_files.add(source)
            continue
        for index, alert in enumerate(alerts):
            definition, errors = validate_alert(alert, source, settings)
            if errors or definition is None:
                fallback = f"#{index + 1}"
                result.errors.extend(DefinitionError(e.source, e.alert or fallback, e.field, e.message) for e in errors)
                if isinstance(alert, Mapping) and isinstance(alert.get("name"), str):
                    result.failed_names.add(alert["name"])
                else:
                    result.unreadable_files.add(source)
                continue
            if definition.name in seen:
                result.errors.append(
                    DefinitionError(source, definition.name, "name", f"already defined in {seen[definition.name]}")
                )
                result.failed_names.add(definition.name)
                continue
            seen[definition.name] = source
            result.definitions.append((source, definition))
    return result


def connection_problems(definitions: Iterable[tuple[str, AlertDefinition]]) -> list[DefinitionError]:
    """Every channel whose Airflow connection does not exist or cannot carry it (needs Airflow's connections)."""
    from delivery.connections import connection_problem

    problems = []
    for source, definition in definitions:
        for index, channel in enumerate(definition.channels):
            conn_id = channel.get("connection") or DEFAULT_CONNECTIONS[channel["type"]]
            problem = connection_problem(conn_id, channel["type"])
            if problem:
                problems.append(DefinitionError(source, definition.name, f"channels[{index}].connection", problem))
    return problems


def _display_path(path: Path, root: Path) -> str:
    """``path`` relative to the project (or to ``root``), as operators see it in the repository."""
    for base in (PROJECT_ROOT, root):
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return str(path)
