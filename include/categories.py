"""The five task categories of the platform: the one place their defaults live.

Each category was a Celery queue of the old worker. Here a category becomes an Airflow pool
(global concurrency cap, sized as the old queue's concurrency), a queue (so a CeleryExecutor
deployment routes tasks to that category's worker group), and retry / timeout defaults.
Every DAG gets its defaults through :func:`platform_dag`; ``airflow_settings.yaml`` mirrors the
pools and a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pendulum

if TYPE_CHECKING:
    from airflow.sdk import DAG

    from notifiers.task_failure import TaskFailureNotifier

#: Every DAG starts from this fixed date; with ``catchup=False`` it only bounds the first run.
PLATFORM_START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")

#: Tags a DAG may carry besides its category name.
APPROVED_TAGS = frozenset({"platform", "analytics", "dbt", "alerts", "reports", "monitoring", "catalog", "ad-hoc"})


@dataclass(frozen=True)
class Category:
    """Scheduling and retry policy shared by every task of one category."""

    name: str
    description: str
    pool_slots: int
    retries: int
    retry_delay: timedelta
    max_retry_delay: timedelta
    execution_timeout: timedelta
    retry_exponential_backoff: float = 2.0
    owner: str = "data-platform"
    tags: Sequence[str] = field(default_factory=tuple)

    @property
    def pool(self) -> str:
        return self.name

    @property
    def queue(self) -> str:
        return self.name

    def describe(self, schedule: Any) -> str:
        """The policy line appended to the docs of a DAG of this category (generated, never restated)."""
        retries = describe_retries(self.retries, self.retry_delay, self.retry_exponential_backoff, self.max_retry_delay)
        return (
            f"**Schedule** {describe_schedule(schedule)} · **pool and queue** `{self.pool}` "
            f"({self.pool_slots} slots) · **retries** {retries} · **timeout** "
            f"{describe_duration(self.execution_timeout)} per task · every task: docs/task-registry.md"
        )

    def default_args(self) -> dict[str, Any]:
        """``default_args`` for a DAG of this category."""
        return {
            "owner": self.owner,
            "pool": self.pool,
            "queue": self.queue,
            "retries": self.retries,
            "retry_delay": self.retry_delay,
            "retry_exponential_backoff": self.retry_exponential_backoff,
            "max_retry_delay": self.max_retry_delay,
            "execution_timeout": self.execution_timeout,
        }


def describe_duration(value: timedelta | float) -> str:
    """``timedelta(seconds=90)`` -> ``90 s``; ``600`` -> ``10 min``; ``7200`` -> ``2 h``."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def describe_retries(
    retries: int, delay: timedelta | float | None, backoff: float | bool, max_delay: timedelta | float | None
) -> str:
    """How a task retries, e.g. ``3, from 30 s, x2 each time, at most 10 min``."""
    if not retries:
        return "none"
    text = f"{retries}, from {describe_duration(delay or 0)}"
    factor = 2.0 if backoff is True else float(backoff or 0)
    if factor and factor != 1:
        text += f", x{factor:g} each time"
    if max_delay is not None:
        text += f", at most {describe_duration(max_delay)}"
    return text


def describe_schedule(schedule: Any) -> str:
    """A DAG's schedule for people: ``*/5 * * * *`` -> `` `*/5 * * * *` (every 5 minutes, UTC)``."""
    if schedule is None:
        return "triggered only"
    clock = getattr(schedule, "timetable", None)
    condition = getattr(schedule, "asset_condition", None)
    if clock is not None and condition is not None:  # an asset-or-time schedule (include.lineage.assets)
        aliases = ", ".join(f"`{name}`" for name in _asset_names(condition))
        return f"{describe_schedule(getattr(clock, 'expression', clock))}, and after asset events of {aliases}"
    if not isinstance(schedule, str):
        return f"`{schedule!r}`"
    try:
        from cron_descriptor import ExpressionDescriptor

        words = ExpressionDescriptor(schedule, use_24hour_time_format=True).get_description()
    except Exception:  # not a cron expression (a preset such as @daily)
        return f"`{schedule}`"
    return f"`{schedule}` ({words[0].lower() + words[1:]}, UTC)"


def _asset_names(condition: Any) -> list[str]:
    """The names of the assets and aliases in an asset condition (``AssetAny``/``AssetAll`` nest them)."""
    objects = getattr(condition, "objects", None)
    if objects is None:
        return [getattr(condition, "name", str(condition))]
    return [name for item in objects for name in _asset_names(item)]


def _minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


CATEGORIES: Mapping[str, Category] = {
    category.name: category
    for category in (
        Category(
            name="analytics",
            description="Catalog refresh, materialized views, query statistics, log cleanup",
            pool_slots=2,
            retries=3,
            retry_delay=timedelta(seconds=30),
            max_retry_delay=_minutes(10),
            execution_timeout=_minutes(60),
        ),
        Category(
            name="dbt",
            description="dbt models and tests (Cosmos), source freshness, docs",
            pool_slots=1,
            retries=2,
            retry_delay=timedelta(seconds=60),
            max_retry_delay=_minutes(10),
            execution_timeout=_minutes(120),
        ),
        Category(
            name="alerts",
            description="Alert evaluation and notification delivery",
            pool_slots=4,
            retries=3,
            retry_delay=timedelta(seconds=15),
            max_retry_delay=_minutes(5),
            execution_timeout=_minutes(15),
        ),
        Category(
            name="reports",
            description="Scheduled and ad-hoc reports, delivery, cleanup",
            pool_slots=2,
            retries=3,
            retry_delay=timedelta(seconds=30),
            max_retry_delay=_minutes(10),
            execution_timeout=_minutes(60),
        ),
        Category(
            name="monitoring",
            description="Health checks, system metrics, task statistics, retention cleanup",
            pool_slots=1,
            retries=2,
            retry_delay=timedelta(seconds=15),
            max_retry_delay=_minutes(5),
            execution_timeout=_minutes(10),
        ),
    )
}


def get_category(name: str) -> Category:
    """Return the category called ``name``; the error lists the valid names."""
    try:
        return CATEGORIES[name]
    except KeyError:
        raise ValueError(f"unknown task category {name!r}; expected one of {sorted(CATEGORIES)}") from None


def failure_notifier() -> TaskFailureNotifier:
    """The failure callback of every platform task: Slack and email on the alerts' connections."""
    from include.settings import SLACK_CONN_ID, SMTP_CONN_ID
    from notifiers.task_failure import TaskFailureNotifier

    return TaskFailureNotifier(slack_conn_id=SLACK_CONN_ID, smtp_conn_id=SMTP_CONN_ID)


def platform_dag(
    *,
    dag_id: str,
    category: str,
    schedule: Any,
    doc_md: str | None,
    tags: Sequence[str] = (),
    max_active_runs: int = 1,
    default_args: Mapping[str, Any] | None = None,
    **dag_kwargs: Any,
) -> DAG:
    """Build a DAG with its category's defaults (pool, queue, retries, timeouts, owner, tags).

    ``default_args`` entries override the category's. Extra keyword arguments go to ``DAG``.
    Every task also gets the platform's failure callback (:func:`failure_notifier`).
    """
    from airflow.sdk import DAG

    policy = get_category(category)
    args = policy.default_args()
    args["on_failure_callback"] = [failure_notifier()]
    args.update(default_args or {})
    return DAG(
        dag_id=dag_id,
        schedule=schedule,
        start_date=PLATFORM_START_DATE,
        catchup=False,
        max_active_runs=max_active_runs,
        doc_md=f"{doc_md.rstrip()}\n\n{policy.describe(schedule)}\n" if doc_md else None,
        default_args=args,
        tags=sorted({"platform", policy.name, *tags}),
        **dag_kwargs,
    )
