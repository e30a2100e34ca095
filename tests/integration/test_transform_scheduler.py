"""The ``transform`` DAG under the real scheduler (watcher mode): what only the scheduler can show.

One ``make run``-style stack (LocalExecutor, triggerer, its own home) serves the whole module; it
renders a second dbt project (``DBT_PROJECT_PATH``, profile from the ``warehouse`` connection).
Runs are triggered through the REST API. Checked: every model and test task starts in the
triggerer and ends as dbt reported, with its dbt lines in its log and no worker start; a failing
model and a failing test skip what is downstream; a stale source gates its models; clearing a
failed model after the data is fixed rebuilds that model alone, then what depends on it; an open
``dbt`` breaker makes the build wait (*up for reschedule*) instead of failing.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import psycopg
import pytest
import requests

from tests.support.servers import free_port
from tests.support.waiting import wait_until

SCHEMA = "sched_shop"
RAW = f"{SCHEMA}_raw"
RUN_TIMEOUT = 300
MODELS = ("stg_orders", "orders_by_status", "status_report")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


def _second_project(root: Path) -> Path:
    """stg_orders (a view on a source with freshness) -> orders_by_status (casts amounts) -> status_report (tables)."""
    project = root / "shop_watch"
    _write(
        project / "dbt_project.yml",
        """
        name: shop_watch
        version: "1.0.0"
        config-version: 2
        profile: shop
        models:
          shop_watch:
            +materialized: table
            +meta: {cosmos: {operator_kwargs: {retries: 0}}}
        data_tests:
          shop_watch:
            +meta: {cosmos: {operator_kwargs: {retries: 0}}}
        """,
    )
    _write(
        project / "models" / "schema.yml",
        f"""
        version: 2
        sources:
          - name: shop
            schema: {RAW}
            config:
              loaded_at_field: loaded_at
              freshness:
                error_after: {{count: 24, period: hour}}
              meta: {{cosmos: {{operator_kwargs: {{retries: 0}}}}}}
            tables:
              - name: orders
        models:
          - name: stg_orders
            columns:
              - name: order_id
                data_tests: [unique, not_null]
              - name: status
                data_tests:
                  - accepted_values:
                      arguments: {{values: [placed, shipped]}}
          - name: orders_by_status
            columns:
              - name: status
                data_tests: [unique]
          - name: status_report
        """,
    )
    _write(
        project / "models" / "stg_orders.sql",
        "{{ config(materialized='view') }}\nselect order_id, status, amount from {{ source('shop', 'orders') }}\n",
    )
    _write(
        project / "models" / "orders_by_status.sql",
        "select status, count(*) as orders, sum(amount::numeric) as amount from {{ ref('stg_orders') }} group by 1\n",
    )
    _write(
        project / "models" / "status_report.sql",
        "select status, orders, amount, now() as built_at from {{ ref('orders_by_status') }}\n",
    )
    return project


def _sql(database_url: str, *statements: str) -> list[tuple]:
    rows: list[tuple] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        for statement in statements:
            cursor = conn.execute(statement)
            rows = cursor.fetchall() if cursor.description else []
    return rows


def _load_orders(database_url: str) -> None:
    _sql(
        database_url,
        f"DROP TABLE IF EXISTS {RAW}.orders",
        f"CREATE TABLE {RAW}.orders (order_id int, status text, amount text, loaded_at timestamptz DEFAULT now())",
        f"INSERT INTO {RAW}.orders (order_id, status, amount) VALUES (1, 'placed', '10'), (2, 'shipped', '20'),"
        " (3, 'shipped', '5')",
    )


class Api:
    def __init__(self, url: str, password: str) -> None:
        self.url = f"{url}/api/v2"
        self.session = requests.Session()
        token = requests.post(f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=30)
        self.session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def get(self, path: str, **params):
        response = self.session.get(f"{self.url}{path}", params=params, timeout=60)
        response.raise_for_status()
        return response.json()

    def trigger(self) -> str:
        response = self.session.post(f"{self.url}/dags/transform/dagRuns", json={"logical_date": None}, timeout=60)
        response.raise_for_status()
        return response.json()["dag_run_id"]

    def run(self, run_id: str) -> dict:
        return self.get(f"/dags/transform/dagRuns/{run_id}")

    def wait(self, run_id: str) -> dict:
        return wait_until(
            lambda: (run := self.run(run_id))["state"] in ("success", "failed") and run,
            what=f"transform run {run_id} to finish",
            timeout=RUN_TIMEOUT,
            interval=1,
        )

    def tasks(self, run_id: str) -> dict[str, dict]:
        tis = self.get(f"/dags/transform/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"]
        return {ti["task_id"]: ti for ti in tis}

    def states(self, run_id: str) -> dict[str, str]:
        return {task_id: ti["state"] for task_id, ti in self.tasks(run_id).items()}

    def clear(self, run_id: str, task_ids: list[str]) -> None:
        response = self.session.post(
            f"{self.url}/dags/transform/clearTaskInstances",
            json={
                "dag_run_id": run_id,
                "task_ids": task_ids,
                "include_downstream": True,
                "only_failed": False,
                "reset_dag_runs": True,
                "dry_run": False,
            },
            timeout=60,
        )
        response.raise_for_status()


@pytest.fixture(scope="module")
def stack(test_env, tmp_path_factory):
    from devstack.stack import LocalStack
    from include.transform.manifest import build_manifest
    from include.transform.project import DbtProject
    from tests.support.environment import grant_schema

    root = tmp_path_factory.mktemp("transform_scheduler")
    project = _second_project(root)
    with psycopg.connect(test_env.database_url, autocommit=True) as conn:
        for schema in (RAW, SCHEMA):  # dbt runs as the platform's role, which owns what it builds
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            grant_schema(test_env, conn, schema, platform_owns=True)
    _load_orders(test_env.platform_url)
    env = {
        "DBT_PROJECT_PATH": str(project),
        "DBT_SCHEMA": SCHEMA,
        "DBT_DOCS_SLUG": "shop",
        "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS": json.dumps({"shop": {"dir": str(root / "docs")}}),
        "CIRCUIT_BREAKERS": json.dumps({"dbt": {"recovery_timeout": 6}}),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",  # only transform runs here
    }
    build_manifest(DbtProject.from_env(env))
    local = LocalStack(
        root / "stack",
        test_env.platform_url,
        test_env.redis_url,
        reader_url=test_env.reader_url,
        port=free_port(),
        extra_env=env,
    )
    try:
        local.up()
        api = Api(local.url, local.admin_password())
        wait_until(lambda: _parsed(api), what="the dag-processor to parse transform", timeout=180)
        api.session.patch(f"{api.url}/dags/transform", json={"is_paused": False}, timeout=60).raise_for_status()
        wait_until(
            lambda: api.get("/dags/transform/dagRuns")["dag_runs"], what="the first (scheduled) run", timeout=120
        )
        yield local, api, root
    finally:
        local.down()


def _parsed(api: Api) -> bool:
    try:
        api.get("/dags/transform")
    except requests.HTTPError:
        return False
    return True


def _first_run(api: Api) -> str:
    runs = sorted(api.get("/dags/transform/dagRuns")["dag_runs"], key=lambda r: r["queued_at"])
    return runs[0]["dag_run_id"]


def _logs(local, run_id: str, task_id: str, attempt: int = 1) -> tuple[str, str]:
    """(worker log, triggerer log) of one try of a task."""
    directory = local.airflow_home / "logs" / "dag_id=transform" / f"run_id={run_id}" / f"task_id={task_id}"
    worker = directory / f"attempt={attempt}.log"
    triggerer = "".join(p.read_text() for p in sorted(directory.glob(f"attempt={attempt}.log.trigger.*.log")))
    return (worker.read_text() if worker.exists() else "", triggerer)


def _events(log: str) -> str:
    lines = []
    for line in log.splitlines():
        try:
            lines.append(str(json.loads(line).get("event", "")))
        except ValueError:
            lines.append(line)
    return "\n".join(lines)


def test_every_model_and_test_task_follows_the_one_build_from_the_triggerer(stack):
    local, api, _ = stack
    run_id = _first_run(api)
    run = api.wait(run_id)
    states = api.states(run_id)
    assert run["state"] == "success", states
    followers = {f"dbt.{m}_model_build" for m in MODELS}
    assert followers | {"dbt.shop_orders_source", "generate_docs", "dbt.dbt_build"} <= set(states)
    assert set(states.values()) == {"success"}

    worker, _ = _logs(local, run_id, "dbt.dbt_build")
    assert "'build'" in _events(worker)  # the one dbt build ran in a worker
    for task_id in [*followers, "dbt.shop_orders_source", "generate_docs"]:
        worker, triggerer = _logs(local, run_id, task_id)
        assert worker == "", f"{task_id} started a worker"  # it started and ended in the triggerer
        assert triggerer, task_id
    _, model_log = _logs(local, run_id, "dbt.orders_by_status_model_build")
    assert "OK created sql table model sched_shop.orders_by_status" in _events(model_log)
    assert "PASS unique_orders_by_status_status" in _events(model_log)
    _, tests_log = _logs(local, run_id, "dbt.stg_orders_model_build")
    assert "PASS accepted_values_stg_orders_status" in _events(tests_log)
    _, source_log = _logs(local, run_id, "dbt.shop_orders_source")
    assert "PASS freshness of shop.orders" in _events(source_log)


def test_a_failing_model_skips_what_is_downstream_and_clearing_it_rebuilds_it_alone(stack, test_env):
    """Then the data is fixed and the model's task cleared (with its downstream): the model is
    rebuilt by its own task, then the model after it; the rest of the project is not rebuilt."""
    local, api, _ = stack
    db = test_env.platform_url
    _sql(db, f"INSERT INTO {RAW}.orders (order_id, status, amount) VALUES (4, 'placed', 'n/a')")
    run_id = api.trigger()
    run = api.wait(run_id)
    states = api.states(run_id)
    assert run["state"] == "failed"
    assert states["dbt.stg_orders_model_build"] == "success"
    assert states["dbt.orders_by_status_model_build"] == "failed"  # 'n/a'::numeric
    assert states["dbt.status_report_model_build"] == "skipped"
    assert states["dbt_build_passed"] == "upstream_failed"
    _, failed_log = _logs(local, run_id, "dbt.orders_by_status_model_build")
    assert 'invalid input syntax for type numeric: "n/a"' in _events(failed_log)
    _, skipped_log = _logs(local, run_id, "dbt.status_report_model_build")
    assert "dbt.orders_by_status_model_build ended failed" in _events(skipped_log)
    before = _sql(db, f"SELECT status, orders FROM {SCHEMA}.orders_by_status ORDER BY 1")
    assert before == [("placed", 1), ("shipped", 2)]  # the previous run's table

    _sql(db, f"UPDATE {RAW}.orders SET amount = '7' WHERE order_id = 4")
    api.clear(run_id, ["dbt.orders_by_status_model_build"])
    run = api.wait(run_id)
    states = api.states(run_id)
    assert run["state"] == "success", states
    assert _sql(db, f"SELECT status, orders, amount FROM {SCHEMA}.orders_by_status ORDER BY 1") == [
        ("placed", 2, 17),
        ("shipped", 2, 25),
    ]
    assert _sql(db, f"SELECT status, orders FROM {SCHEMA}.status_report ORDER BY 1") == [("placed", 2), ("shipped", 2)]
    tasks = api.tasks(run_id)
    for task_id in ("dbt.orders_by_status_model_build", "dbt.status_report_model_build"):
        assert tasks[task_id]["state"] == "success" and tasks[task_id]["try_number"] == 2, tasks[task_id]
        worker, _ = _logs(local, run_id, task_id, attempt=2)
        assert "Trying to run dbtRunner" in _events(worker), f"{task_id} did not run dbt itself"
    assert tasks["dbt.dbt_build"]["try_number"] == 1  # no second build
    assert tasks["dbt.stg_orders_model_build"]["try_number"] == 1  # the rest was not rebuilt
    worker, _ = _logs(local, run_id, "dbt.orders_by_status_model_build", attempt=2)
    assert "PASS unique_orders_by_status_status" in _events(worker)  # its tests ran again too


def _run_on(api: Api, database_url: str, change: str, undo: str) -> tuple[str, dict, dict[str, str]]:
    """A run on changed source data (changed back afterwards): its id, the run and its task states."""
    _sql(database_url, change)
    try:
        run_id = api.trigger()
        run = api.wait(run_id)
    finally:
        _sql(database_url, undo)
    return run_id, run, api.states(run_id)


def test_a_failing_test_skips_the_models_downstream(stack, test_env):
    local, api, _ = stack
    run_id, run, states = _run_on(
        api,
        test_env.platform_url,
        f"INSERT INTO {RAW}.orders (order_id, status, amount) VALUES (5, 'lost in transit', '1')",
        f"DELETE FROM {RAW}.orders WHERE order_id = 5",
    )
    assert run["state"] == "failed"
    assert states["dbt.stg_orders_model_build"] == "failed"  # the model was built, its test failed
    assert states["dbt.orders_by_status_model_build"] == "skipped"
    assert states["dbt.status_report_model_build"] == "skipped"
    _, test_log = _logs(local, run_id, "dbt.stg_orders_model_build")
    assert "FAIL 1 accepted_values_stg_orders_status" in _events(test_log)


def test_a_stale_source_gates_its_models(stack, test_env):
    local, api, _ = stack
    run_id, run, states = _run_on(
        api,
        test_env.platform_url,
        f"UPDATE {RAW}.orders SET loaded_at = now() - interval '3 days'",
        f"UPDATE {RAW}.orders SET loaded_at = now()",
    )
    assert run["state"] == "failed"
    assert states["dbt.shop_orders_source"] == "failed"
    for model in MODELS:
        assert states[f"dbt.{model}_model_build"] == "skipped", model
    _, source_log = _logs(local, run_id, "dbt.shop_orders_source")
    assert "ERROR STALE freshness of shop.orders" in _events(source_log)
    _, gated_log = _logs(local, run_id, "dbt.stg_orders_model_build")
    assert "dbt.shop_orders_source ended failed" in _events(gated_log)


def test_an_open_dbt_breaker_makes_the_build_wait_instead_of_failing(stack):
    """Three unreachable-warehouse invocations opened the breaker: the build is rescheduled (no retry
    used) while every task waits in the triggerer; once the breaker half-opens the run succeeds."""
    from hooks.circuit_breaker import default_store, read_status
    from hooks.dbt_breaker import DbtWarehouseUnreachableError, dbt_breaker

    _, api, _ = stack
    breaker = dbt_breaker("shop", "warehouse")
    for _ in range(3):
        with pytest.raises(DbtWarehouseUnreachableError), breaker.guard():
            raise DbtWarehouseUnreachableError("connection refused")
    assert read_status(default_store(), "dbt", "shop.warehouse").state == "open"

    run_id = api.trigger()
    seen = wait_until(
        lambda: (states := api.states(run_id)).get("dbt.dbt_build") == "up_for_reschedule" and states,
        what="the build to wait for the breaker",
        timeout=60,
        interval=0.5,
    )
    assert seen["dbt.stg_orders_model_build"] == "deferred"  # waiting, holding no worker and no pool slot
    run = api.wait(run_id)  # fails if the run has not ended within RUN_TIMEOUT
    tasks = api.tasks(run_id)
    assert run["state"] == "success", {t: ti["state"] for t, ti in tasks.items()}
    assert tasks["dbt.dbt_build"]["try_number"] == 1  # it waited; no retry was used
    assert read_status(default_store(), "dbt", "shop.warehouse").state == "closed"
