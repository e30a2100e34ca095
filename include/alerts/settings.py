"""Run-time settings of the alerts feature, from the environment (read inside tasks and commands)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from delivery.recording import HEARTBEAT_SECONDS
from include.settings import SLACK_CONN_ID, SMTP_CONN_ID, WEBHOOK_CONN_ID, delivery_heartbeat_seconds, env_number

#: Where alert definitions kept as code live (YAML files).
DEFAULT_DEFINITIONS_DIR = Path(__file__).resolve().parent / "definitions"

#: Connection used by a channel that names none.
DEFAULT_CONNECTIONS = {"slack": SLACK_CONN_ID, "email": SMTP_CONN_ID, "webhook": WEBHOOK_CONN_ID}


@dataclass(frozen=True)
class AlertSettings:
    """Guard rails and delivery policy. Times are in seconds.

    :param minimum_interval: the shortest ``check_interval`` an alert may ask for (Superset's
        ``ALERT_MINIMUM_INTERVAL``): protects the warehouse from alerts that poll it constantly.
    :param max_timeout: the longest statement timeout an alert may ask for.
    :param retry_base: delay before the second delivery attempt; doubled for each further attempt.
    :param retry_max: cap of the delivery retry delay.
    :param max_attempts: after this many failed attempts a notification is marked ``failed``.
    :param heartbeat_seconds: how often a delivering worker says it is alive; a notification it
        claimed is settled as interrupted only once it is gone (:mod:`delivery.recording`).
    """

    definitions_dir: Path = DEFAULT_DEFINITIONS_DIR
    minimum_interval: float = 60.0
    max_timeout: float = 300.0
    retry_base: float = 30.0
    retry_max: float = 3600.0
    max_attempts: int = 10
    heartbeat_seconds: float = HEARTBEAT_SECONDS

    @classmethod
    def from_env(cls) -> AlertSettings:
        """``ALERT_DEFINITIONS_DIR``, ``ALERT_MINIMUM_INTERVAL_SECONDS``, ``ALERT_MAX_TIMEOUT_SECONDS``,
        ``ALERT_DELIVERY_RETRY_BASE_SECONDS``, ``ALERT_DELIVERY_RETRY_MAX_SECONDS``,
        ``ALERT_DELIVERY_MAX_ATTEMPTS``, ``DELIVERY_HEARTBEAT_SECONDS``."""
        base = cls()
        return cls(
            definitions_dir=Path(os.environ.get("ALERT_DEFINITIONS_DIR") or base.definitions_dir),
            minimum_interval=env_number("ALERT_MINIMUM_INTERVAL_SECONDS", base.minimum_interval),
            max_timeout=env_number("ALERT_MAX_TIMEOUT_SECONDS", base.max_timeout),
            retry_base=env_number("ALERT_DELIVERY_RETRY_BASE_SECONDS", base.retry_base),
            retry_max=env_number("ALERT_DELIVERY_RETRY_MAX_SECONDS", base.retry_max),
            max_attempts=env_number("ALERT_DELIVERY_MAX_ATTEMPTS", base.max_attempts, int),
            heartbeat_seconds=delivery_heartbeat_seconds(),
        )


def airflow_base_url() -> str:
    """The Airflow UI's base URL (``[api] base_url``), for links in messages."""
    try:
        from airflow.sdk import conf

        url = conf.get("api", "base_url", fallback=None)
    except Exception:  # outside an Airflow installation
        url = None
    from include.settings import DEFAULT_AIRFLOW_PORT

    fallback = f"http://localhost:{DEFAULT_AIRFLOW_PORT}"
    return (url or os.environ.get("AIRFLOW__API__BASE_URL") or fallback).rstrip("/")
