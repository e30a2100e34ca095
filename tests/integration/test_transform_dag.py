"""The ``transform`` DAG end to end with ``dag.test()``: the bundled dbt project in the real warehouse.

Watcher mode (the default): one good run builds every model and runs every test in one dbt build
and every task ends as dbt reported (and the docs are published); one run on broken data shows a
failing test and a stale source stopping what depends on them. Local mode runs the same project
task by task. What needs the scheduler (start from the triggerer, retries) is in
``test_transform_scheduler.py``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.support.dags import DagRunResult, run_dag_object
from tests.support.servers import free_port
from tests.support.transform import current_manifest, in_dependency_order, load_transform_dag, without_retries

pytestmark = pytest.mark.usefixtures("demo_data")

EXPECTED_DAILY_REVENUE = [
    ("2026-01-10", 2, Decimal("200.50")),
    ("2026-01-11", 2, Decimal("210.00")),
    ("2026-01-12", 3, Decimal("115.00")),
    ("2026-01-13", 1, Decimal("0.00")),
]
EXPECTED_CUSTOMERS = [
    (1, "Ada Lovelace", "GB", 3, Decimal("120.00")),
    (2, "Grace Hopper", "US", 2, Decimal("180.40")),
    (3, "Alan Turing", "GB", 2, Decimal("225.10")),
    (4, "Katherine Johnson", "US", 1, Decimal("0.00")),
    (5, "Hedy Lamarr", "AT", 0, Decimal("0.00")),
]


@pytest.fixture(scope="module")
def demo_data(database_url: str) -> None:
    from include.transform.demo_data import load_demo_data

    with psycopg.connect(database_url) as conn:
        load_demo_data(conn)


@pytest.fixture(scope="module")
def good_run(demo_data, database_url: str) -> DagRunResult:
    """The DAG run on the demo data, as shipped."""
    current_manifest()
    return run_dag_object(in_dependency_order(load_transform_dag()))


def _rows(database_url: str, sql: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql).fetchall()


def test_a_run_builds_every_model_and_runs_every_test(good_run: DagRunResult):
    assert good_run.state == "success", good_run.failed_tasks()
    assert set(good_run.task_states.values()) == {"success"}, good_run.task_states
    ran = set(good_run.task_states)
    for model in ("stg_customers", "stg_orders", "dim_customers", "fct_orders", "daily_revenue"):
        assert f"dbt.{model}_model_build" in ran  # the model and its tests, as dbt build ran them
    assert {"dbt.raw_customers_source", "dbt.raw_orders_source", "generate_docs", "dbt.dbt_build"} <= ran


def test_the_marts_hold_the_expected_rows(good_run: DagRunResult, database_url: str):
    assert good_run.state == "success"
    revenue = _rows(database_url, "SELECT order_date::text, orders, revenue FROM marts.daily_revenue ORDER BY 1")
    assert revenue == EXPECTED_DAILY_REVENUE
    customers = _rows(
        database_url,
        "SELECT customer_id, customer_name, country_code, order_count, lifetime_value "
        "FROM marts.dim_customers ORDER BY customer_id",
    )
    assert customers == EXPECTED_CUSTOMERS
    orders = _rows(database_url, "SELECT order_id, status, is_revenue FROM marts.fct_orders ORDER BY order_id")
    assert [o[0] for o in orders] == [101, 102, 103, 104, 105, 106, 107, 108]
    assert (107, "completed", True) in orders  # cleaned in staging: 'Completed' -> 'completed'


def test_daily_revenue_is_a_materialized_view_that_refreshes_concurrently(good_run: DagRunResult, database_url: str):
    assert good_run.state == "success"
    unique_indexes = _rows(
        database_url,
        """
        SELECT array_agg(a.attname::text)
        FROM pg_matviews m
        JOIN pg_class c ON c.relname = m.matviewname
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = m.schemaname
        JOIN pg_index i ON i.indrelid = c.oid AND i.indisunique
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey)
        WHERE m.schemaname = 'marts' AND m.matviewname = 'daily_revenue'
        GROUP BY i.indexrelid
        """,
    )
    assert unique_indexes == [(["order_date"],)]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY marts.daily_revenue")


def test_fct_orders_is_incremental(good_run: DagRunResult, database_url: str):
    from include.transform.project import DbtProject

    assert good_run.state == "success"
    manifest = json.loads(DbtProject.from_env().manifest_path.read_text())
    config = manifest["nodes"]["model.analytics.fct_orders"]["config"]
    assert (config["materialized"], config["unique_key"]) == ("incremental", "order_id")
    assert _rows(database_url, "SELECT relkind::text FROM pg_class WHERE oid = 'marts.fct_orders'::regclass") == [
        ("r",)
    ]


def test_the_ui_serves_the_generated_docs(good_run: DagRunResult):
    """index.html, manifest.json and catalog.json are where Cosmos's docs plugin reads them."""
    from cosmos.plugin.airflow3 import create_cosmos_fastapi_app
    from fastapi.testclient import TestClient

    assert good_run.task_states["generate_docs"] == "success"
    client = TestClient(create_cosmos_fastapi_app())
    index = client.get("/analytics/dbt_docs_index.html")
    assert index.status_code == 200, index.text
    assert "dbt" in index.text.lower()
    manifest = client.get("/analytics/manifest.json")
    assert manifest.status_code == 200
    assert manifest.json()["metadata"]["project_name"] == "analytics"
    catalog = client.get("/analytics/catalog.json")
    assert catalog.status_code == 200
    assert "model.analytics.daily_revenue" in catalog.json()["nodes"]


@pytest.fixture
def local_mode(monkeypatch):
    monkeypatch.setenv("DBT_EXECUTION_MODE", "local")


def test_local_mode_runs_dbt_task_by_task(local_mode, good_run: DagRunResult, database_url: str):
    from operators.guarded_dbt import GuardedDbtRunLocalOperator

    dag = load_transform_dag()
    assert "dbt.dbt_build" not in dag.task_dict
    assert type(dag.get_task("dbt.fct_orders.run")) is GuardedDbtRunLocalOperator  # dbt run, then dbt test
    result = run_dag_object(without_retries(dag))
    assert result.state == "success", result.failed_tasks()
    assert set(result.task_states.values()) == {"success"}
    assert _rows(database_url, "SELECT count(*) FROM marts.dim_customers") == [(5,)]


@pytest.fixture(scope="module")
def broken_run(good_run: DagRunResult, database_url: str):
    """A run after a bad order arrived and the customers loader stopped (source now 3 days old)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE raw.customers SET loaded_at = now() - interval '3 days'")
        conn.execute(
            "INSERT INTO raw.orders (order_id, customer_id, ordered_at, status, amount) "
            "VALUES (999, 1, '2026-01-14 10:00+00', 'lost in transit', 12.00)"
        )
    try:
        yield run_dag_object(in_dependency_order(without_retries(load_transform_dag())))
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM raw.orders WHERE order_id = 999")
            conn.execute("UPDATE raw.customers SET loaded_at = now()")


def test_a_failing_data_test_skips_the_models_downstream(broken_run: DagRunResult, database_url: str):
    states = broken_run.task_states
    assert broken_run.state == "failed"
    assert states["dbt_build_passed"] == "upstream_failed"  # the run's state says a dbt task failed
    assert states["dbt.raw_orders_source"] == "success"
    assert states["dbt.stg_orders_model_build"] == "failed"  # built, but accepted_values: 'lost in transit'
    for downstream in ("dbt.fct_orders_model_build", "dbt.daily_revenue_model_build", "dbt.dim_customers_model_build"):
        assert states[downstream] == "skipped", downstream  # dbt skipped them, as the task says
    assert states["generate_docs"] == "success"  # the docs of what was built
    assert _rows(database_url, "SELECT count(*) FROM marts.fct_orders WHERE order_id = 999") == [(0,)]


def test_a_stale_source_fails_freshness_and_its_models_do_not_run(broken_run: DagRunResult):
    states = broken_run.task_states
    assert states["dbt.raw_customers_source"] == "failed"
    assert states["dbt.stg_customers_model_build"] == "skipped"


def test_an_unreachable_warehouse_fails_the_build_and_counts_against_the_dbt_breaker(
    good_run: DagRunResult, redis_client, monkeypatch, database_url
):
    from hooks.circuit_breaker import default_store, read_status

    unreachable = database_url.replace(f":{urlsplit(database_url).port}/", f":{free_port()}/")
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", unreachable)  # dbt's profile is this connection
    result = run_dag_object(in_dependency_order(without_retries(load_transform_dag())))

    assert result.state == "failed"
    assert result.task_states["dbt.dbt_build"] == "failed"
    assert result.task_states["dbt.raw_customers_source"] == "failed"  # the build ended without results
    assert result.task_states["dbt.stg_orders_model_build"] == "failed"
    status = read_status(default_store(), "dbt", "analytics.warehouse")
    assert status.failures == 1  # one dbt invocation; two more would open the breaker
    assert "Connection refused" in status.last_error
