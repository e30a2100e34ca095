"""The analytics DAG end to end (dag.test) against the real warehouse and a local HTTP server."""

from __future__ import annotations

import json

import pytest

from tests.integration.analytics_fixtures import warehouse_schema
from tests.support.dags import run_dag
from tests.support.servers import free_port

ALL_JOBS = ["catalog", "materialized_views", "query_statistics", "log_cleanup"]
TOKEN = "analytics-service-token"


@pytest.fixture
def shop(db, test_env, monkeypatch):
    with warehouse_schema(db, test_env) as schema:
        config = {
            "catalog": {"schemas": [schema], "exact_count_max_bytes": 16384},
            "materialized_views": {"schemas": [schema], "dependency_poll_seconds": 1},
        }
        monkeypatch.setenv("AIRFLOW_VAR_ANALYTICS_CONFIG", json.dumps(config))
        yield schema


def _analytics_api(monkeypatch, url: str) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ANALYTICS_API", json.dumps({"conn_type": "http", "host": url, "password": TOKEN}))


def _catalog(db, schema: str) -> dict[str, dict]:
    cur = db.execute("SELECT * FROM analytics_catalog WHERE schema_name = %s", [schema])
    names = [c.name for c in cur.description]
    return {row[names.index("object_name")]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def _view_log(db, run_id: str) -> dict[str, dict]:
    cur = db.execute(
        "SELECT target, status, details, error, started_at, finished_at FROM analytics_refresh_log "
        "WHERE dag_run_id = %s AND job = 'materialized_views' AND target IS NOT NULL",
        [run_id],
    )
    names = [c.name for c in cur.description]
    return {row[0].split(".", 1)[1]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def test_a_run_refreshes_catalog_and_views_in_order_records_everything_and_notifies(db, shop, monkeypatch, http_server):
    _analytics_api(monkeypatch, http_server.url)
    db.execute(
        "INSERT INTO analytics_refresh_log (job, target, status, started_at, finished_at) "
        "SELECT 'catalog', 'old-' || g, 'success', now() - interval '200 days', now() - interval '200 days' "
        "FROM generate_series(1, 7) g"
    )

    result = run_dag("analytics", conf={"jobs": ALL_JOBS, "exact_counts": [f"{shop}.events"]})

    assert result.state == "success", result.task_states
    assert all(state == "success" for state in result.task_states.values()), result.task_states

    # --- catalog: every kind of relation, partitions rolled up, row counts with provenance
    catalog = _catalog(db, shop)
    assert {name: row["object_type"] for name, row in catalog.items()} == {
        "customers": "table",
        "orders": "table",
        "staging_events": "table",
        "notes": "table",
        "big_orders": "view",
        "events": "partitioned_table",
        "partner_feed": "foreign_table",
        "customer_totals": "materialized_view",
        "daily_revenue": "materialized_view",
        "monthly_revenue": "materialized_view",
        "top_customers": "materialized_view",
        "loyal_customers": "view",
        "loyal_summary": "materialized_view",
    }
    customers, orders = catalog["customers"], catalog["orders"]
    assert customers["comment"] == "People who buy"
    assert customers["primary_key"] == ["id"]
    assert customers["columns"][:3] == [
        {
            "name": "id",
            "type": "integer",
            "nullable": False,
            "default": None,
            "comment": None,
            "identity": "always",
            "generated": None,
        },
        {
            "name": "name",
            "type": "text",
            "nullable": False,
            "default": None,
            "comment": "Full name",
            "identity": None,
            "generated": None,
        },
        {
            "name": "tier",
            "type": "text",
            "nullable": False,
            "default": "'basic'::text",
            "comment": None,
            "identity": None,
            "generated": None,
        },
    ]
    assert [(c["name"], c["type"]) for c in orders["columns"]] == [
        ("id", "bigint"),
        ("customer_id", "integer"),
        ("amount", "numeric(10,2)"),
        ("placed_on", "date"),
    ]
    assert orders["foreign_keys"] == [
        {
            "name": "orders_customer_id_fkey",
            "columns": ["customer_id"],
            "references": f"{shop}.customers",
            "referenced_columns": ["id"],
        }
    ]
    assert (customers["row_count"], customers["row_count_method"]) == (40, "estimate")
    assert (orders["row_count"], orders["row_count_method"]) == (400, "estimate")
    assert customers["last_analyzed_at"] is not None and customers["size_bytes"] > 0
    assert (catalog["staging_events"]["row_count"], catalog["staging_events"]["row_count_method"]) == (None, "unknown")
    assert catalog["staging_events"]["last_analyzed_at"] is None
    assert (catalog["notes"]["row_count"], catalog["notes"]["row_count_method"]) == (3, "exact")
    events = catalog["events"]  # asked for an exact count: both partitions counted, summed
    assert (events["partition_count"], events["row_count"], events["row_count_method"]) == (2, 300, "exact")
    assert events["partition_key"] == "RANGE (happened_on)" and events["size_bytes"] > 0
    assert (catalog["partner_feed"]["row_count"], catalog["partner_feed"]["row_count_method"]) == (None, "unknown")
    assert (catalog["big_orders"]["row_count"], catalog["big_orders"]["row_count_method"]) == (None, None)
    assert "amount > " in catalog["big_orders"]["definition"]
    assert all(row["dropped_at"] is None for row in catalog.values())

    catalog_log = db.execute(
        "SELECT status, details, duration_ms FROM analytics_refresh_log WHERE dag_run_id = %s AND job = 'catalog'",
        [result.run_id],
    ).fetchall()
    assert len(catalog_log) == 1 and catalog_log[0][0] == "success" and catalog_log[0][2] > 0
    assert {k: catalog_log[0][1][k] for k in ("total", "added", "changed", "dropped")} == {
        "total": 13,
        "added": 13,
        "changed": 0,
        "dropped": 0,
    }

    # --- materialized views: mode per view, dependency order, one log row each with its duration
    views = _view_log(db, result.run_id)
    assert {name: (row["status"], row["details"]["mode"]) for name, row in views.items()} == {
        "customer_totals": ("success", "concurrently"),
        "daily_revenue": ("success", "plain"),
        "monthly_revenue": ("success", "plain"),
        "top_customers": ("success", "plain"),
        "loyal_summary": ("success", "plain"),
    }
    assert views["monthly_revenue"]["details"]["mode_reason"] == "not populated yet"
    assert views["top_customers"]["started_at"] >= views["customer_totals"]["finished_at"]
    assert views["loyal_summary"]["started_at"] >= views["customer_totals"]["finished_at"]
    assert all(row["details"]["refresh_ms"] >= 0 for row in views.values())
    assert db.execute(f"SELECT count(*) FROM {shop}.monthly_revenue").fetchone()[0] == 1
    analyzed = db.execute(
        "SELECT relname FROM pg_stat_user_tables WHERE schemaname = %s AND last_analyze IS NOT NULL", [shop]
    ).fetchall()
    assert {"customer_totals", "daily_revenue", "monthly_revenue", "top_customers", "loyal_summary"} <= {
        r[0] for r in analyzed
    }

    # --- query statistics: pg_stat_statements is not loaded on this server: skipped with the reason
    stats = db.execute(
        "SELECT status, error FROM analytics_refresh_log WHERE dag_run_id = %s AND job = 'query_statistics'",
        [result.run_id],
    ).fetchall()
    assert len(stats) == 1 and stats[0][0] == "skipped"
    assert "pg_stat_statements" in stats[0][1]

    # --- log cleanup: the 200-day-old rows are gone, the counts are recorded
    assert db.execute("SELECT count(*) FROM analytics_refresh_log WHERE target LIKE 'old-%%'").fetchone()[0] == 0
    cleanup = dict(
        db.execute(
            "SELECT target, details FROM analytics_refresh_log WHERE dag_run_id = %s AND job = 'log_cleanup'",
            [result.run_id],
        ).fetchall()
    )
    assert cleanup["analytics_refresh_log"]["deleted"] == 7
    assert cleanup["analytics_query_statistics"]["deleted"] == 0

    # --- the analytics service was told, with the bearer token, what was refreshed
    posts = [r for r in http_server.requests if r.method == "POST"]
    assert len(posts) == 1
    assert posts[0].path == "/api/v1/analytics/refresh"
    assert posts[0].header("Authorization") == f"Bearer {TOKEN}"
    assert posts[0].header("Idempotency-Key")
    body = posts[0].json()
    assert body["event"] == "analytics.refresh" and body["dag_run_id"] == result.run_id
    assert {f"{shop}.{v}" for v in views} <= set(body["materialized_views"])
    assert body["catalog"]["added"] >= 13


def test_a_failing_view_fails_the_run_naming_it_while_the_others_refresh_and_drops_are_marked(
    db, test_env, shop, monkeypatch, capfd
):
    from tests.support.environment import grant_schema

    first = run_dag("analytics", conf={"jobs": ["catalog"]})
    assert first.state == "success", first.task_states
    before = _catalog(db, shop)
    assert before["notes"]["dropped_at"] is None
    # partitions' estimates summed into the partitioned table
    assert (before["events"]["row_count"], before["events"]["row_count_method"]) == (300, "estimate")

    db.execute(f"DROP TABLE {shop}.notes")
    db.execute(f"CREATE TABLE {shop}.flags (flag integer); INSERT INTO {shop}.flags VALUES (1)")
    db.execute(f"CREATE MATERIALIZED VIEW {shop}.fragile AS SELECT 100 / (SELECT count(*) FROM {shop}.flags) AS x")
    db.execute(f"CREATE MATERIALIZED VIEW {shop}.fragile_report AS SELECT x FROM {shop}.fragile")
    db.execute(f"DELETE FROM {shop}.flags")  # the next refresh of fragile divides by zero
    grant_schema(test_env, db, shop, platform_owns=True)  # the platform owns the new views too
    _analytics_api(monkeypatch, f"http://127.0.0.1:{free_port()}")  # nothing listens there

    result = run_dag("analytics", conf={"jobs": ["catalog", "materialized_views"]})

    assert result.state == "failed"
    assert result.task_states["check_materialized_views"] == "failed"
    views = _view_log(db, result.run_id)
    assert views["fragile"]["status"] == "failed" and "division by zero" in views["fragile"]["error"]
    assert views["fragile_report"]["status"] == "skipped"
    assert f"{shop}.fragile" in views["fragile_report"]["error"]
    for name in ("customer_totals", "daily_revenue", "monthly_revenue", "top_customers", "loyal_summary"):
        assert views[name]["status"] == "success", (name, views[name])
    failed_tasks = [t for t, s in result.task_states.items() if s == "failed"]
    assert sorted(failed_tasks) == ["check_materialized_views", next(t for t in failed_tasks if "[" in t)]
    # the task log (dag.test prints it) has the failure naming the view and why
    failure = next(line for line in capfd.readouterr().out.splitlines() if "materialized views failed" in line)
    assert f"1 of 7 materialized views failed: {shop}.fragile: division by zero" in failure
    assert f"Not refreshed: {shop}.fragile_report" in failure

    # the catalog still ran after the views: the dropped table is marked, not deleted
    catalog = _catalog(db, shop)
    assert catalog["notes"]["dropped_at"] is not None
    assert catalog["customers"]["dropped_at"] is None
    assert catalog["fragile"]["object_type"] == "materialized_view"
    log_row = db.execute(
        "SELECT details FROM analytics_refresh_log WHERE dag_run_id = %s AND job = 'catalog'", [result.run_id]
    ).fetchone()[0]
    assert (log_row["dropped"], log_row["dropped_objects"]) == (1, [f"{shop}.notes"])
    assert log_row["added"] == 3  # flags, fragile, fragile_report

    # the unreachable analytics service did not fail anything: the notification is recorded as failed
    assert result.task_states["notify_analytics_api"] == "success"
    assert result.task_states["refresh_catalog"] == "success"
    notice = db.execute(
        "SELECT status, error FROM analytics_refresh_log WHERE dag_run_id = %s AND job = 'analytics_api'",
        [result.run_id],
    ).fetchone()
    assert notice[0] == "failed" and "ConnectionError" in notice[1]


def test_jobs_turned_off_at_run_time_skip_with_the_reason(db, shop, monkeypatch):
    off = dict.fromkeys(ALL_JOBS)
    monkeypatch.setenv("AIRFLOW_VAR_ANALYTICS_CONFIG", json.dumps({"schedule": off}))

    result = run_dag("analytics")

    assert result.state == "success"
    assert result.task_states.pop("plan_jobs") == "success"
    assert set(result.task_states.values()) == {"skipped"}, result.task_states
    logged = db.execute("SELECT count(*) FROM analytics_refresh_log WHERE dag_run_id = %s", [result.run_id])
    assert logged.fetchone()[0] == 0


def test_a_bad_configuration_fails_the_plan_at_once_naming_the_setting(monkeypatch, capfd):
    monkeypatch.setenv("AIRFLOW_VAR_ANALYTICS_CONFIG", json.dumps({"materialized_views": {"lock_timeout": 5}}))

    result = run_dag("analytics", conf={"jobs": ["materialized_views"]})

    assert result.state == "failed"
    assert result.task_states["plan_jobs"] == "failed"
    assert result.try_numbers["plan_jobs"] == 1  # failed for good: a retry would read the same value
    output = capfd.readouterr().out
    assert "materialized_views: unknown setting(s) ['lock_timeout']" in output
