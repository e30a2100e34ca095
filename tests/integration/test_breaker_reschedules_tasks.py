"""An open database breaker makes Airflow wait (reschedule) instead of failing or burning retries."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import psycopg
import pytest

import hooks.circuit_breaker as circuit_breaker
from hooks.circuit_breaker import CircuitBreaker
from hooks.warehouse import WarehouseHook
from tests.support.dags import run_dag
from tests.support.tcp_proxy import SwitchableProxy


def test_monitoring_dag_waits_for_the_warehouse_and_succeeds_without_using_a_retry(
    database_url, monkeypatch, db, monitored_services
):
    recovery = 4
    monkeypatch.setenv("CIRCUIT_BREAKERS", f'{{"database": {{"recovery_timeout": {recovery}}}}}')
    monkeypatch.setattr(circuit_breaker, "_config_cache", {})
    parts = urlsplit(database_url)
    with SwitchableProxy(parts.hostname, parts.port or 5432, up=False) as proxy:
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", database_url.replace(f":{parts.port}/", f":{proxy.port}/"))

        hook = WarehouseHook()
        for _ in range(5):  # the warehouse is down: five refused connections trip the breaker
            with pytest.raises(psycopg.OperationalError):
                hook.get_conn()
        assert CircuitBreaker("database", "warehouse").status().state == "open"
        refused_before_run = proxy.connections_refused

        threading.Timer(1.0, lambda: setattr(proxy, "up", True)).start()  # the warehouse comes back
        result = run_dag("monitoring")

    assert result.state == "success", result.task_states
    assert result.try_numbers["apply_schema_migrations"] == 1  # rescheduled, not retried
    assert proxy.connections_refused == refused_before_run  # the open breaker kept calls away
    checks = dict(db.execute("SELECT check_name, status FROM health_checks WHERE dag_run_id = %s", [result.run_id]))
    assert checks["warehouse"] == "ok" and set(checks.values()) == {"ok"}
    assert CircuitBreaker("database", "warehouse").status().state == "closed"


def test_the_rescheduled_task_was_recorded_as_waiting(database_url, monkeypatch, monitored_services):
    """The task instance went through up_for_reschedule (Airflow's task_reschedule table)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session

    monkeypatch.setenv("CIRCUIT_BREAKERS", '{"database": {"recovery_timeout": 2}}')
    monkeypatch.setattr(circuit_breaker, "_config_cache", {})
    breaker = CircuitBreaker("database", "warehouse")
    for _ in range(5):
        with pytest.raises(ConnectionError):
            breaker.call(lambda: (_ for _ in ()).throw(ConnectionRefusedError("down")))
    result = run_dag("monitoring")
    assert result.state == "success"
    assert result.try_numbers["apply_schema_migrations"] == 1
    with create_session() as session:
        waits = (
            session.query(TaskReschedule.reschedule_date, TaskInstance.task_id)
            .join(TaskInstance, TaskInstance.id == TaskReschedule.ti_id)
            .filter(TaskInstance.run_id == result.run_id)
            .all()
        )
    assert [task_id for _, task_id in waits] == ["apply_schema_migrations"]
