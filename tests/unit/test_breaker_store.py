"""Where the breakers' Redis comes from: the Airflow connection ``circuit_breaker_redis``, through RedisHook.

Nothing here talks to Redis: a client is made without connecting, and a store whose connection is
not defined never gets as far as a socket.
"""

from __future__ import annotations

import json
import logging

import yaml

from devstack.airflow_env import PROJECT_ROOT, airflow_environment, redis_connection
from devstack.stack import LocalStack
from hooks.circuit_breaker import REDIS_CONN_ID, BreakerConfig, BreakerStore, CircuitBreaker, redis_client

CONNECTION_VARIABLE = f"AIRFLOW_CONN_{REDIS_CONN_ID.upper()}"


def test_make_run_and_the_tests_fill_the_connection_from_redis_url(tmp_path, monkeypatch):
    env = airflow_environment(
        tmp_path,
        database_url="postgresql://postgres@127.0.0.1/analytics",
        redis_url="redis://:s%40cret@10.9.8.7:6390/7",
    )
    assert "REDIS_URL" not in env  # Airflow processes read the connection, not the URL
    monkeypatch.setenv(CONNECTION_VARIABLE, env[CONNECTION_VARIABLE])

    kwargs = redis_client().connection_pool.connection_kwargs

    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == ("10.9.8.7", 6390, 7, "s@cret")
    assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"], kwargs["decode_responses"]) == (0.5, 1.0, True)


def test_a_url_without_a_database_index_is_database_0():
    fields = json.loads(redis_connection("redis://localhost"))
    assert fields == {"conn_type": "redis", "host": "localhost", "port": 6379}


def test_a_store_without_its_connection_fails_open_and_names_the_connection(caplog):
    store = BreakerStore("breaker_store_nowhere")
    config = BreakerConfig(failure_threshold=1, recovery_timeout=60)
    breaker = CircuitBreaker("database", "db-unconfigured", config=config, store=store)

    with caplog.at_level(logging.WARNING, logger="hooks.circuit_breaker"):
        assert [breaker.call(lambda i=i: i) for i in range(3)] == [0, 1, 2]

    [warning] = [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]
    assert "'breaker_store_nowhere'" in warning and "isn't defined" in warning


def test_the_astro_compose_stack_defines_the_connection_for_every_airflow_service():
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.override.yml").read_text())
    fields = json.loads(compose["x-platform-env"][CONNECTION_VARIABLE])
    assert (fields["conn_type"], fields["host"]) == ("redis", "redis")
    assert "REDIS_URL" not in compose["x-platform-env"]


def test_env_sh_carries_the_breaker_connection_but_no_connection_with_a_password(tmp_path):
    stack = LocalStack(tmp_path, "", "")
    api = json.dumps({"conn_type": "http", "host": "http://localhost:8080", "login": "admin", "password": "pw"})
    path = stack.write_env_file(
        {
            CONNECTION_VARIABLE: redis_connection("redis://127.0.0.1:6379/0"),
            "AIRFLOW_CONN_AIRFLOW_API": api,
            "AIRFLOW_CONN_SMTP_DEFAULT": "smtp://bot:secret@mail.example.com:587",
        }
    )
    text = path.read_text()
    assert f"export {CONNECTION_VARIABLE}=" in text
    assert "AIRFLOW_API" not in text and "SMTP_DEFAULT" not in text and "secret" not in text
