"""The relations alert SQL reads, resolved against the reader role's search path, views expanded, stored and shown.

The reader role's search path in the session database is set to a schema it may not use, then
the data schema: unqualified names must resolve as PostgreSQL resolves them for that role.
"""

from __future__ import annotations

import textwrap
from dataclasses import replace

import psycopg
import pytest
from psycopg import sql

from include.lineage.relations import relations_read
from tests.support.alerts import TEST_SETTINGS, clean_alert_tables
from tests.support.environment import grant_schema

DATA, HIDDEN = "lin_marts", "lin_hidden"


@pytest.fixture(scope="module")
def warehouse(test_env):
    """lin_marts (the reader may use it): tables, views on them, a materialized view; lin_hidden (it may not)."""
    with psycopg.connect(test_env.database_url, autocommit=True) as conn:
        conn.execute(
            f"""
            DROP SCHEMA IF EXISTS {DATA}, {HIDDEN} CASCADE;
            CREATE SCHEMA {DATA};
            CREATE SCHEMA {HIDDEN};
            CREATE TABLE {HIDDEN}.orders (id int);
            CREATE TABLE {DATA}.orders (id int, customer_id int, amount numeric);
            CREATE TABLE {DATA}.customers (id int, name text);
            CREATE TABLE {DATA}."Big Customers" (id int);
            CREATE VIEW {DATA}.order_totals AS
                SELECT o.customer_id, sum(o.amount) AS amount FROM {DATA}.orders o GROUP BY 1;
            CREATE VIEW {DATA}.customer_totals AS
                SELECT c.name, t.amount FROM {DATA}.order_totals t JOIN {DATA}.customers c ON c.id = t.customer_id;
            CREATE MATERIALIZED VIEW {DATA}.daily AS SELECT count(*) AS n FROM {DATA}.orders;
            CREATE VIEW {DATA}.over_daily AS SELECT n FROM {DATA}.daily;
            """
        )
        grant_schema(test_env, conn, DATA)
        reader = test_env.role_plan.reader_role
        path = sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}, {}, public").format(
            sql.Identifier(reader), sql.Identifier(test_env.database_name), sql.Identifier(HIDDEN), sql.Identifier(DATA)
        )
        conn.execute(path)
    yield test_env
    with psycopg.connect(test_env.database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} IN DATABASE {} RESET search_path").format(
                sql.Identifier(test_env.role_plan.reader_role), sql.Identifier(test_env.database_name)
            )
        )
        conn.execute(f"DROP SCHEMA {DATA}, {HIDDEN} CASCADE")


def _reads(test_env, query: str, declared=None):
    with psycopg.connect(test_env.reader_url, autocommit=True) as conn:
        return relations_read(conn, query, declared)


@pytest.mark.parametrize(
    ("query", "relations"),
    [
        pytest.param(
            "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id",
            ["lin_marts.customers", "lin_marts.orders"],
            id="unqualified: the first schema of the search path the reader may use",
        ),
        pytest.param(
            'SELECT count(*) FROM "Big Customers" WHERE id IN (SELECT customer_id FROM lin_marts.orders)',
            ["lin_marts.Big Customers", "lin_marts.orders"],
            id="quoted and a subquery",
        ),
        pytest.param(
            "WITH top AS (SELECT * FROM customer_totals ORDER BY amount DESC LIMIT 5) SELECT count(*) FROM top",
            ["lin_marts.customer_totals", "lin_marts.customers", "lin_marts.order_totals", "lin_marts.orders"],
            id="a view of a view, expanded to the tables",
        ),
        pytest.param(
            "SELECT max(n) FROM over_daily",
            ["lin_marts.daily", "lin_marts.over_daily"],
            id="a materialized view is not expanded",
        ),
        pytest.param(
            "SELECT count(*) FROM lin_hidden.orders",
            ["lin_hidden.orders"],
            id="qualified stays in its schema",
        ),
    ],
)
def test_relations_resolved_as_the_reader_resolves_them(warehouse, query, relations):
    found = _reads(warehouse, query)
    assert (found.relations, found.origin, found.unresolved) == (tuple(relations), "sql", ())


def test_names_the_catalog_does_not_know_yet_are_kept_and_noted(warehouse):
    found = _reads(warehouse, "SELECT count(*) FROM lin_marts.next_model JOIN brand_new USING (id)")
    # an unqualified one goes to the first schema of the path the reader may use (not lin_hidden)
    assert found.relations == ("lin_marts.brand_new", "lin_marts.next_model")
    assert found.unresolved == ("lin_marts.next_model", "brand_new")
    assert found.note == "not found by the reader role (yet): lin_marts.next_model, brand_new"


def test_declared_relations_replace_the_sql_and_bad_sql_reads_nothing(warehouse):
    declared = _reads(warehouse, "SELECT refresh_and_count()", ["lin_marts.orders"])
    assert (declared.relations, declared.origin) == (("lin_marts.orders",), "declared")
    broken = _reads(warehouse, "SELECT FROM WHERE (")
    assert broken.relations == () and broken.origin == "error" and "could not be parsed" in broken.note


ALERTS = """
alerts:
  - name: big_orders
    sql: SELECT count(*) FROM orders WHERE amount > 100
    condition: ">"
    threshold: 0
    schedule: on_change
  - name: customer_spend
    sql: SELECT max(amount) FROM customer_totals
    condition: ">"
    threshold: 1000
  - name: declared
    sql: SELECT 1
    condition: ">"
    threshold: 1
    schedule: clock
    reads: [lin_marts.customers]
"""


def test_sync_stores_what_each_alert_reads_and_alerts_list_shows_it(warehouse, db, tmp_path, capsys):
    from include.__main__ import main
    from include.alerts.sync import sync_definitions

    clean_alert_tables(db)
    (tmp_path / "lineage.yaml").write_text(textwrap.dedent(ALERTS))
    report = sync_definitions(settings=replace(TEST_SETTINGS, minimum_interval=60), directory=tmp_path)
    assert report.reads == {"refreshed": 3, "unreadable": []}
    rows = {
        name: (schedule, reads, origin)
        for name, schedule, reads, origin in db.execute(
            "SELECT name, schedule, reads, reads_origin FROM analytics_alerts ORDER BY name"
        )
    }
    assert rows == {
        "big_orders": ("on_change", ["lin_marts.orders"], "sql"),
        "customer_spend": (
            "clock_and_change",
            ["lin_marts.customer_totals", "lin_marts.customers", "lin_marts.order_totals", "lin_marts.orders"],
            "sql",
        ),
        "declared": ("clock", ["lin_marts.customers"], "declared"),
    }
    again = sync_definitions(settings=replace(TEST_SETTINGS, minimum_interval=60), directory=tmp_path)
    assert again.reads == {"refreshed": 0, "unreadable": []}  # nothing changed, nothing worked out again

    assert main(["alerts", "list"]) == 0
    out = capsys.readouterr().out
    assert "reads: lin_marts.orders (from its SQL)" in out
    assert "reads: lin_marts.customers (declared)" in out
    assert "on_change" in out
