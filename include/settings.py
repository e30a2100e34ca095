"""Run-time settings from the environment (the old worker's names where they still apply).

Read these inside tasks and commands, never at DAG parse time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

N = TypeVar("N", int, float)

#: Airflow connections of the channels (alerts, failure callbacks, report emails). The connections
#: the platform's hooks use are their ``default_conn_name`` (``hooks.warehouse``, ``hooks.external_api``...).
SMTP_CONN_ID = "smtp_default"
SLACK_CONN_ID = "slack_alerts"
WEBHOOK_CONN_ID = "alert_webhook"
#: Slack connection reports post through (``REPORTS_SLACK_CONN_ID``; an allowed channel may name its own).
REPORTS_SLACK_CONN_ID = "slack_reports"

#: Most recipients one email may have (a report's ``recipients``, an alert email channel's ``to``):
#: more are refused with an error naming the list; any number up to it is delivered.
MAX_RECIPIENTS = 500

#: The local defaults, in this one place. The servers `make run`, the tests and the benchmarks use
#: unless DATABASE_URL / REDIS_URL say otherwise:
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/analytics"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: ... the ports of the project-local servers they start when those are unreachable (devstack/services.py):
LOCAL_POSTGRES_PORT = 55432
LOCAL_REDIS_PORT = 56379
#: ... and the port of the local Airflow UI and REST API (``AIRFLOW_PORT``).
DEFAULT_AIRFLOW_PORT = 8080


def database_url() -> str:
    """The warehouse server as an administrator (``DATABASE_URL``): for ``make run``, the tests, the
    benchmarks and ``python -m include roles``, which provision the platform's roles.

    The platform itself, tasks and commands alike, reaches the warehouse only through its Airflow
    connections (``warehouse``, ``warehouse_reader``): see :func:`airflow_connections`.
    """
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def airflow_port() -> int:
    """The port of the local Airflow UI and REST API ``make run`` starts (``AIRFLOW_PORT``)."""
    return env_number("AIRFLOW_PORT", DEFAULT_AIRFLOW_PORT, int)


def redis_url() -> str:
    """The Redis that `make run` and the tests point the breakers' connection at (``REDIS_URL``).

    Airflow processes do not read it: the breakers use the connection ``circuit_breaker_redis``.
    """
    return os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def env_number(name: str, default: N, kind: Callable[[str], N] = float) -> N:
    """The number in environment variable ``name`` (``default`` when unset or empty).

    A value that is not a number is an error naming the variable, not a silent default.
    """
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return kind(raw)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise ValueError(f"setting {name}={raw!r} is not {expected}") from None


def delivery_heartbeat_seconds() -> float:
    """Seconds between two heartbeats of a worker delivering notifications or reports
    (``DELIVERY_HEARTBEAT_SECONDS``; default: :data:`delivery.recording.HEARTBEAT_SECONDS`)."""
    from delivery.recording import HEARTBEAT_SECONDS

    return env_number("DELIVERY_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS)


#: Airflow 3.3's switch between its server secrets chain (environment, then the metadata database)
#: and the chain of any other process (environment and configured secrets backend only).
_PROCESS_CONTEXT = "_AIRFLOW_PROCESS_CONTEXT"


@contextmanager
def airflow_connections() -> Iterator[None]:
    """Inside, a command run outside Airflow (``python -m include ...``) finds connections and
    Variables where Airflow's own processes do.

    A task gets its connections from Airflow; any other process sees only ``AIRFLOW_CONN_*``
    variables and the configured secrets backend. Where an Airflow metadata database is configured
    (``.local/env.sh`` of ``make run``, ``astro dev bash``, a scheduler container), the hooks inside
    this block also read it, as the scheduler and the API server do: a command uses the very
    connection the tasks use, and no other source. A connection defined nowhere stays undefined, and
    the hook's error names it.
    """
    configured = bool(os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")) or os.path.isfile(
        os.path.join(os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow"), "airflow.cfg")
    )
    if not configured or _PROCESS_CONTEXT in os.environ:
        yield
        return
    os.environ[_PROCESS_CONTEXT] = "server"
    try:
        yield
    finally:
        os.environ.pop(_PROCESS_CONTEXT, None)
