"""What counts as a failure for the hooks' breakers, with real PostgreSQL and real HTTP servers."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg
import pytest
import requests

from hooks.circuit_breaker import CircuitBreaker, CircuitOpenError
from hooks.external_api import ExternalApiHook
from hooks.failures import HttpDependencyError, HttpRejected
from hooks.warehouse import WarehouseHook, is_database_failure, run_single_statement
from tests.support.servers import free_port
from tests.support.tcp_proxy import SwitchableProxy


def _breaker_state(name: str, target: str):
    return CircuitBreaker(name, target).status()


# --------------------------------------------------------------------------- database


@pytest.fixture
def broken_warehouse(monkeypatch) -> str:
    """A connection id whose server refuses connections."""
    monkeypatch.setenv("AIRFLOW_CONN_BROKEN_WAREHOUSE", f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    return "broken_warehouse"


def test_refused_connections_count_and_open_the_database_breaker_after_five(broken_warehouse):
    hook = WarehouseHook(broken_warehouse)
    for _ in range(5):
        with pytest.raises(psycopg.OperationalError):
            hook.get_conn()
    assert _breaker_state("database", broken_warehouse).state == "open"
    with pytest.raises(CircuitOpenError):
        hook.get_first("SELECT 1")


def test_sql_errors_timeouts_and_read_only_violations_do_not_count(db):
    db.execute("CREATE TABLE IF NOT EXISTS breaker_probe (id int)")
    hook = WarehouseHook()
    for _ in range(6):
        with pytest.raises(psycopg.errors.SyntaxError):
            hook.get_first("SELEC 1")
        with pytest.raises(psycopg.errors.UndefinedTable):
            hook.get_records("SELECT * FROM no_such_table")
    with pytest.raises(psycopg.errors.QueryCanceled):
        with hook.read_only_transaction(statement_timeout=0.2) as conn:
            run_single_statement(conn, "SELECT pg_sleep(2)")
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        with hook.read_only_transaction(statement_timeout=5) as conn:
            run_single_statement(conn, "DELETE FROM breaker_probe")
    status = _breaker_state("database", "warehouse")
    assert status.state == "closed" and status.failures == 0


def test_user_sql_cannot_escape_the_read_only_transaction(db):
    db.execute("CREATE TABLE IF NOT EXISTS escape_probe (id int)")
    hook = WarehouseHook()
    for attack in (
        "COMMIT; DELETE FROM escape_probe",
        "SET TRANSACTION READ WRITE; DELETE FROM escape_probe",
    ):
        with pytest.raises(psycopg.errors.SyntaxError, match="multiple commands"):
            with hook.read_only_transaction(statement_timeout=5) as conn:
                run_single_statement(conn, attack)
    with pytest.raises(psycopg.errors.ActiveSqlTransaction):
        with hook.read_only_transaction(statement_timeout=5) as conn:
            run_single_statement(conn, "SET TRANSACTION READ WRITE")
    with hook.read_only_transaction(statement_timeout=5) as conn:
        assert run_single_statement(conn, "SELECT %(n)s::int + 1", {"n": 41}).fetchone() == (42,)


def test_a_connection_lost_mid_transaction_counts(database_url, monkeypatch):
    parts = urlsplit(database_url)
    with SwitchableProxy(parts.hostname, parts.port or 5432) as proxy:
        monkeypatch.setenv("AIRFLOW_CONN_PROXIED", database_url.replace(f":{parts.port}/", f":{proxy.port}/"))
        hook = WarehouseHook("proxied")
        with pytest.raises(psycopg.OperationalError):
            with hook.transaction() as conn:
                conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    assert _breaker_state("database", "proxied").failures >= 1


@pytest.mark.parametrize(
    ("error", "counts"),
    [
        (psycopg.errors.SyntaxError("x"), False),
        (psycopg.errors.QueryCanceled("statement timeout"), False),
        (psycopg.errors.ReadOnlySqlTransaction("read only"), False),
        (psycopg.errors.AdminShutdown("terminating connection"), True),
        (psycopg.errors.TooManyConnections("too many"), True),
        (psycopg.OperationalError("connection refused"), True),
        (ConnectionResetError("reset"), True),
        (ValueError("bad"), False),
    ],
)
def test_database_failure_classification(error, counts):
    assert is_database_failure(error) is counts


# --------------------------------------------------------------------------- HTTP


@pytest.fixture
def api_conn(http_server, monkeypatch) -> str:
    monkeypatch.setenv(
        "AIRFLOW_CONN_TEST_API", f'{{"conn_type": "http", "host": "{http_server.url}", "password": "t0ken"}}'
    )
    return "test_api"


def test_http_404_does_not_count_but_503_and_429_do(http_server, api_conn):
    hook = ExternalApiHook(api_conn)
    target = f"127.0.0.1:{http_server.port}"
    http_server.respond_with(404, "no such thing", times=5)
    for _ in range(5):
        with pytest.raises(HttpRejected):
            hook.post("/refresh", json={})
    assert _breaker_state("external_api", target).failures == 0
    http_server.respond_with(503, "down", times=2)
    http_server.respond_with(429, "slow down", times=1)
    for _ in range(3):
        with pytest.raises(HttpDependencyError):
            hook.post("/refresh", json={})
    assert _breaker_state("external_api", target).state == "open"
    with pytest.raises(CircuitOpenError):
        hook.post("/refresh", json={})
    assert len(http_server.requests) == 8  # the refused call never left the process
    assert http_server.requests[0].header("Authorization") == "Bearer t0ken"


def test_refused_http_connections_count(monkeypatch):
    port = free_port()
    monkeypatch.setenv("AIRFLOW_CONN_DEAD_API", f'{{"conn_type": "http", "host": "http://127.0.0.1:{port}"}}')
    hook = ExternalApiHook("dead_api", timeout=2)
    for _ in range(3):
        with pytest.raises(requests.ConnectionError):
            hook.get("/health")
    assert _breaker_state("external_api", f"127.0.0.1:{port}").state == "open"
