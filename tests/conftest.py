"""Every test session: an isolated Airflow home, and local recording servers (no PostgreSQL or Redis).

The real PostgreSQL and Redis of a session are set up by ``tests/integration/conftest.py``, only
when an integration test runs; ``tests/unit`` and ``tests/dags`` run with both stopped
(``make test-unit``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import environment

_AIRFLOW_HOME: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _AIRFLOW_HOME
    if getattr(config, "workerinput", None) is None and _AIRFLOW_HOME is None:
        _AIRFLOW_HOME = environment.isolate_airflow()


def pytest_unconfigure(config: pytest.Config) -> None:
    global _AIRFLOW_HOME
    if _AIRFLOW_HOME is not None:
        shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)
        _AIRFLOW_HOME = None


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The session's throw-away ``AIRFLOW_HOME``."""
    if _AIRFLOW_HOME is None:
        raise RuntimeError("tests/conftest.py did not isolate an Airflow home for this process")
    return _AIRFLOW_HOME


@pytest.fixture
def http_server() -> Iterator:
    """A local HTTP server recording requests (stands in for Slack, webhooks, APIs)."""
    from tests.support.servers import RecordingHTTPServer

    with RecordingHTTPServer() as server:
        yield server


@pytest.fixture
def smtp_server() -> Iterator:
    """A real SMTP server (aiosmtpd) keeping the messages it receives."""
    from tests.support.servers import SmtpSink

    with SmtpSink() as server:
        yield server
