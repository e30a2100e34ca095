"""The integration tests' real services: PostgreSQL, Redis, migrations, an api-server.

The session's services (``tests/support/environment.py``) are set up when the first integration
test runs and torn down at the end of the session; every test starts with an empty Redis database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import environment
from tests.support.connections import point_channels_at


@pytest.fixture(scope="session", autouse=True)
def test_env(airflow_home: Path) -> Iterator[environment.TestEnvironment]:
    """A fresh warehouse database, a claimed Redis index and the migrated Airflow home of this session."""
    env = environment.set_up(airflow_home)
    yield env
    environment.tear_down(env)


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


@pytest.fixture
def monitored_services(monkeypatch, smtp_server, http_server, api_server):
    """Connections of every health-checked channel and of the REST API, pointing at real local servers."""
    point_channels_at(
        monkeypatch,
        http_url=http_server.url,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        slack_path="",
        slack_token="T000/B000/secret-token",
    )
    api = {"conn_type": "http", "host": api_server.url, "login": "admin", "password": api_server.password}
    monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API", json.dumps(api))
    return smtp_server, http_server
