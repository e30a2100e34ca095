"""Run-time configuration of the analytics DAG: job schedules and the settings of each job.

Sources, later ones winning key by key: the defaults below, the ``ANALYTICS_CONFIG`` environment
variable (JSON), the Airflow Variable ``analytics_config`` (JSON). Read inside tasks only, never
when the DAG file is parsed. A bad value fails with an error naming its path and what was expected.

Example Variable value::

    {"schedule": {"catalog": "*/30 * * * *", "log_cleanup": null},
     "catalog": {"schemas": ["sales", "marts"], "exact_counts": ["sales.orders"]},
     "log_cleanup": {"retention_days": {"analytics_refresh_log": 30}}}
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

CONFIG_VARIABLE = "analytics_config"
CONFIG_ENV = "ANALYTICS_CONFIG"

#: The jobs of the analytics DAG, in the order they are documented.
JOBS = ("catalog", "materialized_views", "query_statistics", "log_cleanup")

#: Default cron schedule (UTC) of each job. The DAG itself runs every 15 minutes; a job runs on the
#: first DAG run after each of its cron times, so a schedule finer than 15 minutes acts as 15.
DEFAULT_SCHEDULES: dict[str, str | None] = {
    "catalog": "0 * * * *",
    "materialized_views": "0 * * * *",
    "query_statistics": "*/15 * * * *",
    "log_cleanup": "30 3 * * *",
}


class ConfigError(ValueError):
    """The analytics configuration has a bad value (the message names it)."""


@dataclass(frozen=True)
class CatalogSettings:
    #: Schemas to catalog; empty = every non-system schema.
    schemas: tuple[str, ...] = ()
    exclude_schemas: tuple[str, ...] = ()
    #: Never-analyzed tables up to this size get an exact ``count(*)``; larger ones stay "unknown".
    exact_count_max_bytes: int = 1024 * 1024
    #: ``schema.table`` names always counted exactly (a partitioned table: all its partitions).
    exact_counts: tuple[str, ...] = ()
    #: At most this many exact counts per run (each holds a lock until the refresh commits).
    exact_count_max_tables: int = 100
    statement_timeout_seconds: float = 600.0
    lock_timeout_seconds: float = 10.0


@dataclass(frozen=True)
class MaterializedViewSettings:
    schemas: tuple[str, ...] = ()
    exclude_schemas: tuple[str, ...] = ()
    #: How long a refresh waits for the view's lock (readers block a plain refresh) before failing.
    lock_timeout_seconds: float = 30.0
    statement_timeout_seconds: float = 1800.0
    #: A view whose sources are still refreshing checks again after this long (holding no slot).
    dependency_poll_seconds: float = 15.0
    #: ... and gives up (failed) after waiting this long for them in total.
    dependency_wait_seconds: float = 3600.0


@dataclass(frozen=True)
class QueryStatisticsSettings:
    #: How many statements of each window are stored (by total execution time in the window).
    top_n: int = 50
    #: Statements of every database of the server, not only the warehouse database.
    all_databases: bool = False
    query_text_max_chars: int = 4000
    statement_timeout_seconds: float = 120.0


@dataclass(frozen=True)
class LogCleanupSettings:
    #: Retention per log table (days); see include/analytics/cleanup.py for the tables that exist.
    retention_days: Mapping[str, int] = field(
        default_factory=lambda: {"analytics_refresh_log": 90, "analytics_query_statistics": 30}
    )
    #: Rows deleted per transaction (each batch commits, so locks stay short).
    batch_size: int = 5000
    #: Upper bound of batches per table and run; what is left is deleted by the next run.
    max_batches: int = 200
    lock_timeout_seconds: float = 5.0
    statement_timeout_seconds: float = 60.0


@dataclass(frozen=True)
class AnalyticsApiSettings:
    #: Path of the analytics service's refresh endpoint, relative to the connection's host.
    endpoint: str = "/api/v1/analytics/refresh"
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class AnalyticsConfig:
    schedule: Mapping[str, str | None] = field(default_factory=lambda: dict(DEFAULT_SCHEDULES))
    catalog: CatalogSettings = field(default_factory=CatalogSettings)
    materialized_views: MaterializedViewSettings = field(default_factory=MaterializedViewSettings)
    query_statistics: QueryStatisticsSettings = field(default_factory=QueryStatisticsSettings)
    log_cleanup: LogCleanupSettings = field(default_factory=LogCleanupSettings)
    analytics_api: AnalyticsApiSettings = field(default_factory=AnalyticsApiSettings)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (for XCom); :func:`config_from_dict` reads it back."""
        return json.loads(json.dumps(asdict(self)))


_SECTIONS = {
    "catalog": CatalogSettings,
    "materialized_views": MaterializedViewSettings,
    "query_statistics": QueryStatisticsSettings,
    "log_cleanup": LogCleanupSettings,
    "analytics_api": AnalyticsApiSettings,
}


def _settings(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path} must be a JSON object, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {unknown}; expected some of {sorted(known)}")
    defaults = cls()
    values = {}
    for name, value in data.items():
        values[name] = _coerce(getattr(defaults, name), value, f"{path}.{name}")
    return cls(**values)


def _coerce(default: Any, value: Any, path: str) -> Any:
    """``value`` checked against the type of ``default``."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{path} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        minimum = 0 if path.endswith("_bytes") else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{path} must be an integer >= {minimum}, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{path} must be a positive number of seconds, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path} must be a non-empty string, got {value!r}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{path} must be a list of names, got {value!r}")
        return tuple(value)
    if isinstance(default, Mapping):  # retention_days: merged over the defaults
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path} must be a JSON object of table name -> days, got {value!r}")
        merged = dict(default)
        for table, days in value.items():
            merged[table] = _coerce(1, days, f"{path}.{table}")
        return merged
    raise ConfigError(f"{path}: unsupported setting")  # pragma: no cover - all fields covered above


def _schedule(data: Any, path: str = "schedule") -> dict[str, str | None]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path} must be a JSON object of job -> cron expression or null")
    unknown = sorted(set(data) - set(JOBS))
    if unknown:
        raise ConfigError(f"{path}: unknown job(s) {unknown}; expected some of {list(JOBS)}")
    merged = dict(DEFAULT_SCHEDULES)
    for job, cron in data.items():
        if cron is not None:
            _check_cron(cron, f"{path}.{job}")
        merged[job] = cron
    return merged


def _check_cron(cron: Any, path: str) -> None:
    from croniter import croniter

    if not isinstance(cron, str) or not croniter.is_valid(cron):
        raise ConfigError(
            f"{path} must be a cron expression such as '0 * * * *' (or null to turn the job off), got {cron!r}"
        )


def config_from_dict(data: Mapping[str, Any] | None) -> AnalyticsConfig:
    """Build and validate the configuration from overrides of the defaults."""
    data = dict(data or {})
    unknown = sorted(set(data) - {"schedule", *_SECTIONS})
    if unknown:
        raise ConfigError(f"unknown section(s) {unknown}; expected some of {['schedule', *_SECTIONS]}")
    kwargs: dict[str, Any] = {}
    if "schedule" in data:
        kwargs["schedule"] = _schedule(data["schedule"])
    for name, cls in _SECTIONS.items():
        if name in data:
            kwargs[name] = _settings(cls, data[name], name)
    return AnalyticsConfig(**kwargs)


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _parse_json(raw: Any, source: str) -> dict[str, Any]:
    if raw in (None, ""):
        return {}
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        value = json.loads(raw)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{source} must be a JSON object, got {type(value).__name__}")
    return value


def load_config() -> AnalyticsConfig:
    """The configuration from ``ANALYTICS_CONFIG`` and the ``analytics_config`` Variable (run time only)."""
    from airflow.sdk import Variable

    merged = _parse_json(os.environ.get(CONFIG_ENV), f"environment variable {CONFIG_ENV}")
    variable = Variable.get(CONFIG_VARIABLE, default=None)
    merged = _deep_merge(merged, _parse_json(variable, f"Airflow Variable {CONFIG_VARIABLE}"))
    try:
        return config_from_dict(merged)
    except ConfigError as error:
        raise ConfigError(f"analytics configuration ({CONFIG_VARIABLE} / {CONFIG_ENV}): {error}") from None


def restore_config(data: Mapping[str, Any]) -> AnalyticsConfig:
    """Read back :meth:`AnalyticsConfig.as_dict` (the plan task hands the config to the others)."""
    return config_from_dict(data)


# ----------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class JobDecision:
    job: str
    due: bool
    reason: str


def decide_job(
    job: str,
    cron: str | None,
    now: datetime,
    last_started: datetime | None,
    requested: tuple[str, ...] = (),
) -> JobDecision:
    """Whether ``job`` runs in a DAG run at ``now`` (database time).

    Jobs named in ``requested`` (the run's ``jobs`` parameter) run whatever their schedule, and then
    only those. Otherwise a job is due when one of its cron times has passed since its last start.
    """
    if requested:
        if job in requested:
            return JobDecision(job, True, "requested for this run")
        return JobDecision(job, False, f"not requested (this run asked for {', '.join(requested)})")
    if cron is None:
        return JobDecision(job, False, "turned off in the configuration (schedule is null)")
    if last_started is None:
        return JobDecision(job, True, f"never ran before (schedule {cron!r})")
    from croniter import croniter

    now_utc = now.astimezone(UTC)
    previous = croniter(cron, now_utc).get_prev(datetime)
    if previous > last_started:
        return JobDecision(job, True, f"schedule {cron!r} fired at {previous:%Y-%m-%d %H:%M} UTC after the last run")
    following = croniter(cron, now_utc).get_next(datetime)
    return JobDecision(
        job,
        False,
        f"not due: schedule {cron!r}, last run started {last_started.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC, "
        f"next at {following:%Y-%m-%d %H:%M} UTC",
    )


#: The job a change of the relations it reads (asset events) runs; the others keep their clock.
DATA_DRIVEN_JOB = "materialized_views"


def decide_job_for_change(job: str, cron: str | None, changed: list[str]) -> JobDecision:
    """Whether ``job`` runs in a DAG run triggered by asset events of the ``changed`` relations.

    Only the materialized views run (those that read what changed, in dependency order); a job
    turned off in the configuration stays off.
    """
    if job != DATA_DRIVEN_JOB:
        return JobDecision(job, False, "this run is for a data change; the job keeps its own schedule")
    if cron is None:
        return JobDecision(job, False, "turned off in the configuration (schedule is null)")
    return JobDecision(job, True, f"relations changed: {', '.join(changed)}")


def requested_jobs(value: Any) -> tuple[str, ...]:
    """The ``jobs`` run parameter, checked (unknown job names are an error)."""
    if value in (None, "", []):
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"run parameter 'jobs' must be a list of job names, got {value!r}")
    unknown = sorted(set(value) - set(JOBS))
    if unknown:
        raise ConfigError(f"run parameter 'jobs': unknown job(s) {unknown}; expected some of {list(JOBS)}")
    return tuple(j for j in JOBS if j in value)
