"""Data-aware runs under the real scheduler: what a dbt change sets off, seen through Airflow's own records.

One ``make run``-style stack serves the module, rendering a small dbt project of two incremental
models: ``lin_shop.orders`` (from ``raw.orders``) and ``lin_shop.customers`` (from
``raw.customers``). Its data change: a new order arrives, no new customer; ``transform`` runs
once. dbt adds the order and changes no customer row, so:

* only ``lin_shop.orders`` is an asset event (through the alias ``dbt_models``);
* ``analytics`` runs for it and refreshes the materialized view that reads it, not the one that
  reads ``lin_shop.customers``; the refreshed view is an event of its own;
* ``alerts`` runs for it and evaluates the alert that reads ``lin_shop.orders`` (and, after the
  view's event, the one that reads the view), not the one that reads ``lin_shop.customers``;
* ``reports`` runs for it and generates the ``on_change`` report that reads ``lin_shop.orders``
  once (its published file is an event too); a report waiting for ``lin_shop.customers`` goes
  out at its data wait limit, marked;
* the Assets view of the REST API shows the assets, the aliases and the DAGs that consume them;
* the OpenLineage file transport has each job's inputs and outputs, named like the assets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest

from devstack.airflow_env import openlineage_file
from tests.support.environment import grant_schema
from tests.support.scheduler import scheduler_stack
from tests.support.servers import RecordingHTTPServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

SHOP, VIEWS = "lin_shop", "lin_views"
NEW_ORDER = 5001
#: The task whose success emits the events of what dbt built (watcher mode: the one build)
MODEL_TASK = "dbt.dbt_build"
RUN_TIMEOUT = 300

ALERTS = f"""
alerts:
  - name: new_order_arrived
    sql: SELECT count(*) FROM {SHOP}.orders WHERE order_id = {NEW_ORDER}
    condition: ">"
    threshold: 0
    schedule: on_change
    channels: [{{type: webhook, endpoint: /orders}}]
  - name: new_customer_arrived
    sql: SELECT count(*) FROM {SHOP}.customers WHERE customer_id = {NEW_ORDER}
    condition: ">"
    threshold: 0
    schedule: on_change
    channels: [{{type: webhook, endpoint: /customers}}]
  - name: order_count_grew
    sql: SELECT n FROM {VIEWS}.order_count
    condition: ">"
    threshold: 0
    schedule: on_change
    channels: [{{type: webhook, endpoint: /counts}}]
"""

INCREMENTAL = """
{{{{ config(materialized='incremental', unique_key='{key}') }}}}
select * from {{{{ source('raw', '{table}') }}}}
{{% if is_incremental() %}}
where loaded_at > (select coalesce(max(loaded_at), '-infinity'::timestamptz) from {{{{ this }}}})
{{% endif %}}
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


def _shop_project(root: Path, test_env) -> dict[str, str]:
    """The dbt project and its profile (the platform's role, schema lin_shop); returns its DBT_* settings."""
    from urllib.parse import urlsplit

    project, profiles = root / "shop", root / "profiles"
    _write(project / "dbt_project.yml", 'name: shop\nversion: "1.0.0"\nconfig-version: 2\nprofile: shop\n')
    _write(
        project / "models" / "sources.yml",
        "version: 2\nsources:\n  - name: raw\n    schema: raw\n    tables: [{name: orders}, {name: customers}]\n",
    )
    _write(project / "models" / "orders.sql", INCREMENTAL.format(key="order_id", table="orders"))
    _write(project / "models" / "customers.sql", INCREMENTAL.format(key="customer_id", table="customers"))
    url = urlsplit(test_env.platform_url)
    profile = {
        "type": "postgres", "host": url.hostname, "port": url.port or 5432, "user": url.username,
        "password": url.password or "", "dbname": url.path.lstrip("/"), "schema": SHOP, "threads": 1,
    }  # fmt: skip
    _write(profiles / "profiles.yml", json.dumps({"shop": {"target": "ci", "outputs": {"ci": profile}}}))
    return {"DBT_PROJECT_PATH": str(project), "DBT_PROFILES_DIR": str(profiles), "DBT_DOCS_SLUG": "shop"}


def _dbt_run(settings: dict[str, str], root: Path) -> None:
    """Build the models once outside Airflow (the views below read them), and the manifest Cosmos renders."""
    from include.transform.manifest import build_manifest
    from include.transform.project import DbtProject

    dbt = os.path.join(os.path.dirname(sys.executable), "dbt")
    command = [dbt, "run", "--project-dir", settings["DBT_PROJECT_PATH"],
               "--profiles-dir", settings["DBT_PROFILES_DIR"],
               "--target-path", str(root / "dbt_target"), "--log-path", str(root / "dbt_logs")]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, cwd=root)
    build_manifest(DbtProject.from_env({**os.environ, **settings}))


@pytest.fixture(scope="module")
def change(test_env, tmp_path_factory):
    """The stack, the data change, and transform's run of it; yields what the tests read."""
    root = tmp_path_factory.mktemp("data_aware")
    settings = _shop_project(root, test_env)
    with psycopg.connect(test_env.database_url, autocommit=True) as conn:
        for schema in (SHOP, VIEWS):
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.execute(f"CREATE SCHEMA {schema}")
            grant_schema(test_env, conn, schema, platform_owns=True)
    _dbt_run(settings, root)
    with psycopg.connect(test_env.platform_url, autocommit=True) as conn:
        conn.execute(f"CREATE MATERIALIZED VIEW {VIEWS}.order_count AS SELECT count(*) AS n FROM {SHOP}.orders")
        conn.execute(f"CREATE MATERIALIZED VIEW {VIEWS}.customer_count AS SELECT count(*) AS n FROM {SHOP}.customers")
    definitions = root / "alerts"
    _write(definitions / "data_aware.yaml", ALERTS)
    published = root / "published"
    published.mkdir()
    with psycopg.connect(test_env.database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE analytics_reports RESTART IDENTITY CASCADE")
        conn.execute(
            "INSERT INTO analytics_reports (name, sql, schedule, destinations, wait_for_data, data_wait_limit_seconds) "
            "VALUES (%s, %s, 'on_change', %s, false, NULL), (%s, %s, '* * * * *', '[]', true, 1)",
            [
                "orders_on_change", f"SELECT order_id, amount FROM {SHOP}.orders ORDER BY order_id",
                json.dumps([{"url": published.as_uri()}]),
                "customers_each_minute", f"SELECT count(*) AS customers FROM {SHOP}.customers",
            ],
        )  # fmt: skip
    webhook = RecordingHTTPServer().start()
    env = {
        **settings,
        "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS": json.dumps({"shop": {"dir": str(root / "docs")}}),
        "ALERT_DEFINITIONS_DIR": str(definitions),
        "REPORTS_ALLOWED_DESTINATIONS": json.dumps([{"name": "published", "url": published.as_uri()}]),
        "REPORTS_STORAGE_URL": (root / "archive").as_uri(),
        "AIRFLOW__SCHEDULER__PARSING_CLEANUP_INTERVAL": "5",  # activates alias-made assets sooner
        "AIRFLOW_CONN_ALERT_WEBHOOK": json.dumps({"conn_type": "http", "host": webhook.url}),
        "ANALYTICS_CONFIG": json.dumps(
            {
                "schedule": {"catalog": None, "query_statistics": None, "log_cleanup": None},
                "materialized_views": {"schemas": [VIEWS], "dependency_poll_seconds": 1},
                "catalog": {"schemas": [VIEWS, SHOP]},
            }
        ),
    }
    try:
        with scheduler_stack(root / "stack", test_env, env) as (stack, api):
            with psycopg.connect(test_env.database_url, autocommit=True) as conn:
                conn.execute(
                    "INSERT INTO raw.orders (order_id, customer_id, ordered_at, status, amount) "
                    f"VALUES ({NEW_ORDER}, 1, now(), 'placed', 42.00)"
                )
            for dag_id in ("alerts", "analytics", "reports", "transform"):  # transform's first run builds the change
                api.unpause(dag_id)
            transform = wait_until(
                lambda: next(iter(api.runs("transform")), None), what="transform's first run", timeout=RUN_TIMEOUT
            )
            yield {
                "stack": stack,
                "api": api,
                "transform": transform,
                "root": root,
                "env": test_env,
                "published": published,
            }
    finally:
        webhook.stop()
        with psycopg.connect(test_env.database_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {VIEWS}, {SHOP} CASCADE")
            conn.execute("TRUNCATE analytics_reports RESTART IDENTITY CASCADE")
            conn.execute(f"DELETE FROM raw.orders WHERE order_id = {NEW_ORDER}")


def _relation(uri: str) -> str:
    return ".".join(uri.rsplit("/", 2)[-2:])


def _triggered_by(api, dag_id: str, source_run_id: str, relation: str | None = None) -> dict:
    """The asset-triggered run of ``dag_id`` that consumed an event of ``source_run_id`` (of ``relation``)."""

    def consumed(run: dict) -> bool:
        events = api.get(f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents")["asset_events"]
        return any(e["source_run_id"] == source_run_id and relation in (None, _relation(e["uri"])) for e in events)

    return api.wait_for_run(
        dag_id,
        lambda run: run["run_type"] == "asset_triggered" and consumed(run),
        what=f"an asset-triggered run of {dag_id} after {source_run_id}",
        timeout=RUN_TIMEOUT,
    )


def test_the_view_over_a_changed_model_is_refreshed_and_the_other_is_not(change, db):
    api, transform = change["api"], change["transform"]["dag_run_id"]
    run = _triggered_by(api, "analytics", transform, f"{SHOP}.orders")
    assert run["state"] == "success", api.tasks("analytics", run["dag_run_id"])
    refreshed = db.execute(
        "SELECT target, status FROM analytics_refresh_log WHERE dag_run_id = %s AND job = 'materialized_views'",
        [run["dag_run_id"]],
    ).fetchall()
    assert refreshed == [(f"{VIEWS}.order_count", "success")]
    assert (
        db.execute(f"SELECT n FROM {VIEWS}.order_count").fetchone()[0]
        == db.execute(f"SELECT count(*) FROM {SHOP}.orders").fetchone()[0]
    )
    events = api.asset_events(source_dag_id="analytics", source_run_id=run["dag_run_id"])
    assert [_relation(e["uri"]) for e in events] == [f"{VIEWS}.order_count"]


def _change_events(db, alert: str) -> list[dict]:
    cur = db.execute(
        "SELECT e.dag_run_id, e.triggered_by, e.state_after FROM analytics_alert_events e "
        "JOIN analytics_alerts a ON a.id = e.alert_id WHERE a.name = %s AND e.trigger = 'change' ORDER BY e.id",
        [alert],
    )
    return [{"run": run, "triggered_by": by, "state": state} for run, by, state in cur.fetchall()]


def test_the_alert_reading_the_changed_model_is_evaluated_and_the_other_is_not(change, db):
    api, transform = change["api"], change["transform"]["dag_run_id"]
    run = _triggered_by(api, "alerts", transform, f"{SHOP}.orders")
    assert run["state"] == "success", api.tasks("alerts", run["dag_run_id"])
    evaluated = _change_events(db, "new_order_arrived")
    assert [e["run"] for e in evaluated] == [run["dag_run_id"]]
    (why,) = evaluated[0]["triggered_by"]
    assert (why["relation"], why["source"]) == (f"{SHOP}.orders", f"transform.{MODEL_TASK}")
    assert why["source_run_id"] == transform
    assert evaluated[0]["state"] == "triggered"
    assert _change_events(db, "new_customer_arrived") == []  # no customer row changed
    notified = db.execute(
        "SELECT count(*) FROM analytics_alert_notifications n JOIN analytics_alerts a ON a.id = n.alert_id "
        "WHERE a.name = 'new_order_arrived' AND n.kind = 'fired'"
    ).fetchone()[0]
    assert notified == 1
    log = _task_log(change["stack"], "alerts", run["dag_run_id"], "evaluate_batch")
    assert f"alert new_order_arrived evaluated because {SHOP}.orders changed" in log


def test_the_alert_reading_the_refreshed_view_is_evaluated_after_its_refresh(change, db):
    api, transform = change["api"], change["transform"]["dag_run_id"]
    analytics = _triggered_by(api, "analytics", transform, f"{SHOP}.orders")
    run = _triggered_by(api, "alerts", analytics["dag_run_id"])
    evaluated = _change_events(db, "order_count_grew")
    assert run["dag_run_id"] in [e["run"] for e in evaluated]
    why = next(e for e in evaluated if e["run"] == run["dag_run_id"])["triggered_by"]
    assert [(w["relation"], w["source"]) for w in why] == [
        (f"{VIEWS}.order_count", "analytics.refresh_materialized_view")
    ]


def _task_log(stack, dag_id: str, run_id: str, task_id: str) -> str:
    directory = stack.airflow_home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
    texts = [p.read_text() for p in sorted(directory.glob(f"task_id={task_id}/**/attempt=*.log"))]
    texts += [p.read_text() for p in sorted(directory.glob(f"task_id={task_id}/attempt=*.log"))]
    lines = []
    for line in "".join(texts).splitlines():
        try:
            lines.append(str(json.loads(line).get("event", "")))
        except ValueError:
            lines.append(line)
    return "\n".join(lines)


def test_the_assets_view_shows_the_assets_their_producers_and_consumers(change):
    api, transform = change["api"], change["transform"]["dag_run_id"]
    _triggered_by(api, "analytics", transform, f"{SHOP}.orders")

    def listed() -> dict[str, dict]:  # the UI lists active assets: the scheduler activates alias-made ones
        return {
            _relation(a["uri"]): a for a in api.get("/assets", limit=200)["assets"] if a["uri"].startswith("postgres")
        }

    assets = wait_until(
        lambda: (found := listed()) and f"{SHOP}.orders" in found and f"{VIEWS}.order_count" in found and found,
        what="the assets to be listed as active",
        timeout=120,
        interval=2,
    )
    fct = assets[f"{SHOP}.orders"]
    assert [alias["name"] for alias in fct["aliases"]] == ["dbt_models"]
    assert [alias["name"] for alias in assets[f"{VIEWS}.order_count"]["aliases"]] == ["materialized_views"]
    producers = {e["source_dag_id"] for e in api.asset_events(asset_id=fct["id"])}
    assert producers == {"transform"}
    consumers = {
        dag_id
        for dag_id in ("alerts", "analytics", "reports", "transform", "monitoring")
        if "dbt_models" in json.dumps(api.get(f"/dags/{dag_id}/details").get("asset_expression"))
    }
    assert consumers == {"alerts", "analytics", "reports"}


def test_openlineage_events_name_each_jobs_inputs_and_outputs_like_the_assets(change, db):
    api, env = change["api"], change["env"]
    transform = change["transform"]["dag_run_id"]
    analytics = _triggered_by(api, "analytics", transform, f"{SHOP}.orders")
    alerts = _triggered_by(api, "alerts", transform, f"{SHOP}.orders")
    catalog = api.trigger("analytics", {"jobs": ["catalog"]})
    assert api.wait("analytics", catalog)["state"] == "success"
    events = [json.loads(line) for line in openlineage_file(change["stack"].airflow_home).read_text().splitlines()]
    database = env.database_name

    def datasets(job: str, run_id: str, side: str) -> set[str]:
        found = set()
        for event in events:
            dag_run = event["run"]["facets"].get("airflow", {}).get("dagRun", {})
            if event["eventType"] == "COMPLETE" and event["job"]["name"] == job and dag_run.get("run_id") == run_id:
                found |= {f"{d['namespace']}/{d['name']}" for d in event.get(side, [])}
        return found

    host = "postgres://127.0.0.1:5432"
    assert f"{host}/{database}.{SHOP}.orders" in datasets(f"transform.{MODEL_TASK}", transform, "outputs")
    assert datasets("analytics.refresh_materialized_view", analytics["dag_run_id"], "inputs") == {
        f"{host}/{database}.{SHOP}.orders"
    }
    assert datasets("analytics.refresh_materialized_view", analytics["dag_run_id"], "outputs") == {
        f"{host}/{database}.{VIEWS}.order_count"
    }
    read = db.execute(  # what the alerts evaluated in that run read (both events may have come in one run)
        "SELECT DISTINCT unnest(a.reads) FROM analytics_alert_events e JOIN analytics_alerts a ON a.id = e.alert_id "
        "WHERE e.dag_run_id = %s",
        [alerts["dag_run_id"]],
    ).fetchall()
    assert f"{SHOP}.orders" in {r for (r,) in read}
    assert datasets("alerts.evaluate_batch", alerts["dag_run_id"], "inputs") == {
        f"{host}/{database}.{r}" for (r,) in read
    }
    assert datasets("alerts.evaluate_batch", alerts["dag_run_id"], "outputs") == {
        f"{host}/{database}.public.analytics_alert_events",
        f"{host}/{database}.public.analytics_alert_notifications",
    }
    reports = _triggered_by(api, "reports", transform, f"{SHOP}.orders")
    assert datasets("reports.report.generate", reports["dag_run_id"], "inputs") == {f"{host}/{database}.{SHOP}.orders"}
    # only the file it published: never the temporary file it was written as
    (archived,) = datasets("reports.report.generate", reports["dag_run_id"], "outputs")
    assert archived.startswith("file/") and "orders_on_change" in archived  # namespace "file", the path
    (published,) = datasets("reports.report.deliver", reports["dag_run_id"], "outputs")
    assert published.startswith("file/") and change["published"].name in published
    catalogued = datasets("analytics.refresh_catalog", catalog, "inputs")
    assert {f"{host}/{database}.{SHOP}.orders", f"{host}/{database}.{VIEWS}.order_count"} <= catalogued
    assert datasets("analytics.refresh_catalog", catalog, "outputs") == {f"{host}/{database}.public.analytics_catalog"}


def test_only_what_dbt_changed_is_an_asset_event(change):
    """Last: the transform run (its docs task) may still be finishing while the others ran."""
    api, run_id = change["api"], change["transform"]["dag_run_id"]
    run = api.wait("transform", run_id, timeout=RUN_TIMEOUT)
    assert run["state"] == "success", api.tasks("transform", run_id)
    events = api.asset_events(source_dag_id="transform", source_run_id=run_id)
    assert [_relation(e["uri"]) for e in events] == [f"{SHOP}.orders"]  # customers: built, no row changed
    assert events[0]["source_task_id"] == MODEL_TASK
    assert events[0]["extra"] == {
        "dbt_unique_id": "model.shop.orders",
        "materialized": "incremental",
        "rows_affected": 1,
    }


def _report_runs(db, report: str) -> list[dict]:
    cur = db.execute(
        "SELECT trigger, status, triggered_by, data_note, dag_run_id FROM analytics_report_runs "
        "WHERE report_name = %s ORDER BY id",
        [report],
    )
    return [dict(zip(("trigger", "status", "triggered_by", "data_note", "dag_run_id"), r, strict=True)) for r in cur]


def test_the_report_on_change_is_generated_once_after_its_input_changed(change, db):
    api, transform = change["api"], change["transform"]["dag_run_id"]
    run = _triggered_by(api, "reports", transform, f"{SHOP}.orders")
    assert run["state"] == "success", api.tasks("reports", run["dag_run_id"])
    analytics = _triggered_by(api, "analytics", transform, f"{SHOP}.orders")
    _triggered_by(api, "reports", analytics["dag_run_id"])  # the view's event: the report does not read it
    (generated,) = _report_runs(db, "orders_on_change")
    assert (generated["trigger"], generated["status"], generated["dag_run_id"]) == (
        "change",
        "delivered",
        run["dag_run_id"],
    )
    assert [(c["relation"], c["source"]) for c in generated["triggered_by"]] == [
        (f"{SHOP}.orders", f"transform.{MODEL_TASK}")
    ]
    (copy,) = list(change["published"].glob("*"))
    assert str(NEW_ORDER) in copy.read_text()
    files = api.asset_events(source_dag_id="reports", source_run_id=run["dag_run_id"])
    assert [e["uri"] for e in files] == [copy.as_uri()]


def test_a_report_waiting_for_data_goes_out_at_its_data_wait_limit_marked(change, db):
    api = change["api"]

    def marked() -> list[dict]:  # a run after the report's first minute slot plans it
        return [r for r in _report_runs(db, "customers_each_minute") if r["data_note"]]

    def planned() -> list[dict]:
        api.wait("reports", api.trigger("reports"))
        return marked()

    (late,) = wait_until(planned, what="the waiting report to go out at its limit", timeout=150, interval=5)[:1]
    assert late["trigger"] == "scheduled" and late["status"] == "delivered"
    assert late["data_note"].startswith("Generated at its data wait limit (1 s after the ")
    assert "none of the relations it reads was seen to change" in late["data_note"]
