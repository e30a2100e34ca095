"""Session-wide real services and an isolated Airflow home (see tests/support/environment.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import environment

_ENV: environment.TestEnvironment | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _ENV
    if getattr(config, "workerinput", None) is None and _ENV is None:
        _ENV = environment.set_up()


def pytest_unconfigure(config: pytest.Config) -> None:
    global _ENV
    if _ENV is not None:
        environment.tear_down(_ENV)
        _ENV = None


@pytest.fixture(scope="session")
def test_env() -> environment.TestEnvironment:
    assert _ENV is not None
    return _ENV


@pytest.fixture(scope="session")
def database_url(test_env: environment.TestEnvironment) -> str:
    return test_env.database_url


@pytest.fixture
def scratch_database(test_env: environment.TestEnvironment) -> Iterator[str]:
    """The URL of an empty PostgreSQL database of this test's own (dropped afterwards)."""
    with environment.scratch_database(test_env) as url:
        yield url


@pytest.fixture
def db(database_url: str) -> Iterator:
    """An autocommit psycopg connection to the session's warehouse database."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def redis_client(test_env: environment.TestEnvironment) -> Iterator:
    """The session's Redis database, flushed before the test."""
    import redis

    client = redis.Redis.from_url(test_env.redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _flush_redis(test_env: environment.TestEnvironment) -> None:
    """Every test starts with an empty Redis database (breaker state included)."""
    import redis

    redis.Redis.from_url(test_env.redis_url).flushdb()


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


@pytest.fixture(scope="session")
def api_server(test_env: environment.TestEnvironment) -> Iterator:
    """A running Airflow api-server on the session's metadata DB (REST API v2 and UI)."""
    from tests.support.api_server import AirflowApiServer

    server = AirflowApiServer(test_env.airflow_home).start()
    yield server
    server.stop()


@pytest.fixture
def statsd() -> Iterator:
    """Airflow's stats client in this process pointed at a UDP listener that records every packet."""
    from tests.support.statsd_exporter import capture_statsd

    with capture_statsd() as listener:
        yield listener
