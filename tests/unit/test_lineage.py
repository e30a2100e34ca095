"""Assets and lineage, pure logic: the relations SQL names, relation URIs, triggering events, schedules."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from include.lineage.assets import (
    Relation,
    WarehouseLocation,
    clock_or_changes,
    file_uri,
    parse_relation_uri,
    relation_uri,
)
from include.lineage.relations import (
    TableReference,
    UnreadableSql,
    declared_relations,
    referenced_tables,
)
from include.lineage.triggers import affecting, relation_changes

WAREHOUSE = WarehouseLocation("db.example.com", 5432, "analytics")


def refs(*names: str) -> list[TableReference]:
    out = []
    for name in names:
        schema, _, table = name.rpartition(".")
        out.append(TableReference(schema or None, table))
    return out


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        pytest.param(
            "SELECT count(*) FROM marts.orders o JOIN marts.customers c ON c.id = o.customer_id "
            "LEFT JOIN staging.stg_payments p USING (order_id) CROSS JOIN marts.calendar",
            refs("marts.orders", "marts.customers", "staging.stg_payments", "marts.calendar"),
            id="joins",
        ),
        pytest.param(
            "WITH recent AS (SELECT * FROM marts.orders WHERE ordered_at > now() - interval '1 day'), "
            "totals AS (SELECT sum(amount) FROM recent) SELECT * FROM totals, recent",
            refs("marts.orders"),
            id="ctes are not tables",
        ),
        pytest.param(
            "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT count(*) FROM r",
            [],
            id="a recursive cte reads nothing",
        ),
        pytest.param(
            "WITH orders AS (SELECT * FROM staging.raw_orders) SELECT count(*) FROM orders",
            refs("staging.raw_orders"),
            id="a cte shadows a table of the same name",
        ),
        pytest.param(
            "SELECT (SELECT max(amount) FROM marts.orders) - coalesce((SELECT avg(x) FROM "
            "(SELECT amount AS x FROM marts.refunds) s), 0) WHERE EXISTS (SELECT 1 FROM marts.flags) "
            "AND 1 IN (SELECT id FROM marts.ids)",
            refs("marts.orders", "marts.refunds", "marts.flags", "marts.ids"),
            id="subqueries",
        ),
        pytest.param(
            'SELECT count(*) FROM "Sales"."Big Customers" JOIN Sales.Orders USING (id) JOIN "orders" USING (id)',
            refs("Sales.Big Customers", "sales.orders", "orders"),
            id="quoted keep their case, unquoted fold",
        ),
        pytest.param(
            "SELECT count(*) FROM orders, Customers WHERE id = %(id)s",
            refs("orders", "customers"),
            id="unqualified, with a parameter",
        ),
        pytest.param(
            "SELECT * FROM generate_series(1, 3) g, LATERAL (SELECT * FROM events e WHERE e.n = g) x, "
            "unnest('{1}'::int[])",
            refs("events"),
            id="functions are not tables",
        ),
        pytest.param("SELECT 1 FROM a UNION SELECT 1 FROM b", refs("a", "b"), id="set operations"),
        pytest.param("TABLE marts.orders", refs("marts.orders"), id="TABLE"),
        pytest.param("SELECT 1", [], id="no table"),
    ],
)
def test_referenced_tables(sql, expected):
    assert referenced_tables(sql) == expected


def test_each_table_is_named_once():
    assert referenced_tables("SELECT * FROM a JOIN a a2 ON true WHERE EXISTS (SELECT 1 FROM a)") == refs("a")


def test_unparseable_sql_is_an_error_that_says_so():
    with pytest.raises(UnreadableSql, match="could not be parsed to find the relations it reads"):
        referenced_tables("SELECT * FROM (SELECT")


def test_declared_relations_are_checked_and_sorted():
    assert declared_relations(["marts.b", "marts.a", "marts.a"]).relations == ("marts.a", "marts.b")
    with pytest.raises(ValueError, match="'orders' is not a relation name of the form schema.table"):
        declared_relations(["orders"])


def test_relation_uri_is_the_postgres_provider_form_and_round_trips():
    uri = relation_uri(WAREHOUSE, Relation("marts", "orders"))
    assert uri == "postgres://db.example.com:5432/analytics/marts/orders"
    quoted = relation_uri(WAREHOUSE, Relation("Sales", "Big Customers"))
    assert quoted == "postgres://db.example.com:5432/analytics/Sales/Big%20Customers"
    assert parse_relation_uri(quoted) == (WAREHOUSE, Relation("Sales", "Big Customers"))
    assert parse_relation_uri("s3://bucket/report.csv") is None
    assert WAREHOUSE.relation_of("postgres://other:5432/analytics/marts/orders") is None


def test_relation_uri_is_what_the_provider_and_openlineage_accept():
    from airflow.providers.postgres.assets.postgres import convert_asset_to_openlineage
    from airflow.sdk import Asset

    asset = Asset(uri=relation_uri(WAREHOUSE, Relation("marts", "orders")))
    assert asset.uri == "postgres://db.example.com:5432/analytics/marts/orders"  # the sanitizer keeps it
    dataset = convert_asset_to_openlineage(asset, None)
    assert (dataset.namespace, dataset.name) == ("postgres://db.example.com:5432", "analytics.marts.orders")


def test_file_uri():
    assert file_uri("s3://reports/daily/a.csv") == "s3://reports/daily/a.csv"
    assert file_uri("/srv/reports/a b.csv") == "file:///srv/reports/a%20b.csv"


def _event(uri: str, when: str, *, alias: str = "dbt_models", run: str = "r1", extra=None):
    return SimpleNamespace(
        asset=SimpleNamespace(uri=uri, name=uri),
        timestamp=datetime.fromisoformat(when).replace(tzinfo=UTC),
        source_dag_id="transform",
        source_task_id="dbt.dbt_build",
        source_run_id=run,
        source_map_index=-1,
        extra=extra or {},
        source_aliases=[SimpleNamespace(name=alias)],
    )


def test_relation_changes_of_this_warehouse_once_each_oldest_first():
    orders = _event(
        relation_uri(WAREHOUSE, Relation("marts", "orders")), "2026-05-01T10:00:02", extra={"rows_affected": 7}
    )
    payments = _event(relation_uri(WAREHOUSE, Relation("marts", "payments")), "2026-05-01T10:00:01")
    elsewhere = _event("postgres://other:5432/analytics/marts/orders", "2026-05-01T10:00:03")
    report = _event("s3://reports/a.csv", "2026-05-01T10:00:04")
    # the accessor lists each event under its asset and under its alias
    events = {
        "orders": [orders],
        "payments": [payments],
        "other": [elsewhere],
        "file": [report],
        "alias": [orders, payments, elsewhere],
    }
    changes = relation_changes(events, WAREHOUSE)
    assert [c.relation.key for c in changes] == ["marts.payments", "marts.orders"]
    assert changes[1].as_dict() == {
        "relation": "marts.orders",
        "asset": "postgres://db.example.com:5432/analytics/marts/orders",
        "at": "2026-05-01T10:00:02+00:00",
        "source": "transform.dbt.dbt_build",
        "source_run_id": "r1",
        "rows_affected": 7,
    }
    assert [c.relation.key for c in affecting(changes, ["marts.orders", "marts.x"])] == ["marts.orders"]
    assert relation_changes({}, WAREHOUSE) == []
    assert relation_changes(None, WAREHOUSE) == []


def test_clock_or_changes_schedule():
    from include.categories import describe_schedule

    schedule = clock_or_changes("*/5 * * * *", ["dbt_models", "materialized_views"])
    assert schedule.timetable.expression == "*/5 * * * *"
    assert [a.name for a in schedule.asset_condition.objects] == ["dbt_models", "materialized_views"]
    assert describe_schedule(schedule) == (
        "`*/5 * * * *` (every 5 minutes, UTC), and after asset events of `dbt_models`, `materialized_views`"
    )
