"""Run-time settings from the environment (the old worker's names where they still apply).

Read these inside tasks and commands, never at DAG parse time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

N = TypeVar("N", int, float)

#: Airflow connection ids used by the platform: its own role, and the reader role for user SQL.
WAREHOUSE_CONN_ID = "warehouse"
WAREHOUSE_READER_CONN_ID = "warehouse_reader"
SMTP_CONN_ID = "smtp_default"
SLACK_CONN_ID = "slack_alerts"
WEBHOOK_CONN_ID = "alert_webhook"
ANALYTICS_API_CONN_ID = "analytics_api"

#: The local servers `make run`, the tests and the benchmarks use unless DATABASE_URL / REDIS_URL say otherwise.
#: Most recipients one email may have (a report's ``recipients``, an alert email channel's ``to``):
#: more are refused with an error naming the list; any number up to it is delivered.
MAX_RECIPIENTS = 500

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/analytics"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def database_url() -> str:
    """The warehouse DSN for commands run outside Airflow tasks (``DATABASE_URL``)."""
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def reader_database_url() -> str:
    """The reader role's DSN for commands that run user SQL outside Airflow tasks (``READER_DATABASE_URL``).

    There is no default: user SQL never falls back to the platform's ``DATABASE_URL``.
    """
    url = os.environ.get("READER_DATABASE_URL")
    if not url:
        raise ValueError(
            "READER_DATABASE_URL is not set: commands that run alert or report SQL use the least-privilege "
            "reader role, never DATABASE_URL (make run writes it to .local/env.sh; see docs/security.md)"
        )
    return url


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
