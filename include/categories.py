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
        doc_md=doc_md,
        default_args=args,
        tags=sorted({"platform", policy.name, *tags}),
        **dag_kwargs,
    )
