"""Materialized-view refresh against the real warehouse: plan, modes, concurrency, lock timeout."""

from __future__ import annotations

import threading

import pytest

from include.analytics.config import MaterializedViewSettings
from include.analytics.mviews import plan_views, refresh_view
from tests.integration.analytics_fixtures import warehouse_schema

VIEWS_SQL = """
CREATE SCHEMA {s};
CREATE TABLE {s}.items (id integer PRIMARY KEY, name text NOT NULL);
INSERT INTO {s}.items SELECT g, 'item ' || g FROM generate_series(1, 50) g;
-- refreshing it takes a while: long enough for a second refresh to find it busy
CREATE MATERIALIZED VIEW {s}.slow AS SELECT i.id FROM {s}.items i, (SELECT pg_sleep(1.5)) AS pause;
CREATE MATERIALIZED VIEW {s}.by_name AS SELECT id, name FROM {s}.items;
CREATE UNIQUE INDEX by_name_key ON {s}.by_name (id);
CREATE MATERIALIZED VIEW {s}.by_lower_name AS SELECT id, name FROM {s}.items;
CREATE UNIQUE INDEX by_lower_name_expr ON {s}.by_lower_name (lower(name));
CREATE UNIQUE INDEX by_lower_name_partial ON {s}.by_lower_name (id) WHERE id > 10;
CREATE VIEW {s}.named AS SELECT id FROM {s}.by_name;
CREATE MATERIALIZED VIEW {s}.named_count AS SELECT count(*) AS n FROM {s}.named;
CREATE MATERIALIZED VIEW {s}.chained AS SELECT n FROM {s}.named_count;
"""


@pytest.fixture
def views_schema(db, test_env):
    with warehouse_schema(db, test_env, VIEWS_SQL) as schema:
        yield schema


@pytest.fixture
def hook():
    from hooks.warehouse import WarehouseHook

    return WarehouseHook()


def _settings(schema: str, **overrides) -> MaterializedViewSettings:
    return MaterializedViewSettings(schemas=(schema,), **overrides)


def test_the_plan_orders_views_by_what_they_read_even_through_plain_views(hook, views_schema):
    plan = plan_views(hook, _settings(views_schema))

    s = views_schema
    assert [(v.name, v.level, v.reads) for v in plan] == [
        ("by_lower_name", 0, ()),
        ("by_name", 0, ()),
        ("slow", 0, ()),
        ("named_count", 1, (f"{s}.by_name",)),
        ("chained", 2, (f"{s}.named_count",)),
    ]
    keys = [v.key for v in plan]
    assert all(keys[i] in v.reads for v in plan for i in v.reads_indexes)


def test_two_refreshes_of_one_view_at_once_one_refreshes_and_the_other_skips(hook, views_schema, db):
    barrier = threading.Barrier(2)
    outcomes = []
    errors = []

    def refresh() -> None:
        try:
            barrier.wait(timeout=10)
            outcomes.append(refresh_view(hook, views_schema, "slow", _settings(views_schema), dag_run_id="concurrent"))
        except Exception as error:  # the test asserts that neither errors
            errors.append(error)

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert sorted(o.status for o in outcomes) == ["skipped", "success"]
    skipped = next(o for o in outcomes if o.status == "skipped")
    assert f"another refresh of {views_schema}.slow is running (pid " in skipped.reason
    rows = db.execute(
        "SELECT status, error FROM analytics_refresh_log WHERE dag_run_id = 'concurrent' ORDER BY status"
    ).fetchall()
    assert [r[0] for r in rows] == ["skipped", "success"]
    assert "another refresh" in rows[0][1]


def test_concurrently_needs_a_plain_column_unique_index_and_keeps_readers_reading(hook, views_schema, database_url):
    import psycopg

    settings = _settings(views_schema, lock_timeout_seconds=1)
    with psycopg.connect(database_url) as reader:
        reader.execute(f"SELECT count(*) FROM {views_schema}.by_name").fetchone()
        reader.execute(f"SELECT count(*) FROM {views_schema}.by_lower_name").fetchone()
        # the reader's transaction now holds ACCESS SHARE locks on both views

        concurrent = refresh_view(hook, views_schema, "by_name", settings)
        blocked = refresh_view(hook, views_schema, "by_lower_name", settings)
        reader.rollback()

    assert (concurrent.status, concurrent.mode) == ("success", "concurrently")
    assert concurrent.details["mode_reason"] == f"unique index {views_schema}.by_name_key"
    # an expression or partial unique index does not qualify: plain refresh, which waits for the
    # reader, and gives up after lock_timeout; worth a retry
    assert blocked.status == "failed"
    assert (blocked.sqlstate, blocked.retryable) == ("55P03", True)
    assert "lock timeout" in blocked.reason

    after = refresh_view(hook, views_schema, "by_lower_name", settings)
    assert (after.status, after.mode) == ("success", "plain")
    assert after.details["mode_reason"] == "no unique index usable by CONCURRENTLY"
