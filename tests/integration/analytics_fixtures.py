"""A small warehouse schema for the analytics tests: every kind of relation the catalog knows.

Tables (a foreign-key pair, one never analyzed and too big for an exact count, one never analyzed
and small), a view, a partitioned table with two partitions, a foreign table, and materialized
views: one with a unique index (concurrent refresh), one without (plain), one created WITH NO DATA
(plain: not populated), one reading another, and one reading another through a plain view.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

FIXTURE_SQL = """
CREATE SCHEMA {s};

CREATE TABLE {s}.customers (
    id        integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name      text NOT NULL,
    tier      text NOT NULL DEFAULT 'basic',
    signed_up date
);
COMMENT ON TABLE {s}.customers IS 'People who buy';
COMMENT ON COLUMN {s}.customers.name IS 'Full name';
INSERT INTO {s}.customers (name, signed_up)
    SELECT 'customer ' || g, date '2026-01-01' + g FROM generate_series(1, 40) g;

CREATE TABLE {s}.orders (
    id          bigint PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES {s}.customers (id),
    amount      numeric(10, 2) NOT NULL,
    placed_on   date NOT NULL DEFAULT current_date
);
INSERT INTO {s}.orders
    SELECT g, 1 + g % 40, (g % 97) * 1.5, date '2026-03-01' + g % 30 FROM generate_series(1, 400) g;
ANALYZE {s}.customers;
ANALYZE {s}.orders;

-- never analyzed, bigger than the test's exact_count_max_bytes: row count unknown
CREATE TABLE {s}.staging_events (payload text) WITH (autovacuum_enabled = false);
INSERT INTO {s}.staging_events SELECT repeat('x', 40) || g FROM generate_series(1, 3000) g;
-- never analyzed and small: counted exactly
CREATE TABLE {s}.notes (note text) WITH (autovacuum_enabled = false);
INSERT INTO {s}.notes VALUES ('a'), ('b'), ('c');

CREATE VIEW {s}.big_orders AS SELECT id, customer_id, amount FROM {s}.orders WHERE amount > 100;

CREATE TABLE {s}.events (id bigint NOT NULL, happened_on date NOT NULL, kind text)
    PARTITION BY RANGE (happened_on);
CREATE TABLE {s}.events_2025 PARTITION OF {s}.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE {s}.events_2026 PARTITION OF {s}.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO {s}.events SELECT g, date '2025-07-01' + g, 'click' FROM generate_series(1, 300) g;
ANALYZE {s}.events;

CREATE FOREIGN DATA WRAPPER {s}_fdw;
CREATE SERVER {s}_server FOREIGN DATA WRAPPER {s}_fdw;
CREATE FOREIGN TABLE {s}.partner_feed (id integer, note text) SERVER {s}_server;

CREATE MATERIALIZED VIEW {s}.customer_totals AS
    SELECT customer_id, count(*) AS orders, sum(amount) AS total FROM {s}.orders GROUP BY customer_id;
CREATE UNIQUE INDEX customer_totals_key ON {s}.customer_totals (customer_id);

CREATE MATERIALIZED VIEW {s}.daily_revenue AS
    SELECT placed_on, sum(amount) AS revenue FROM {s}.orders GROUP BY placed_on;

CREATE MATERIALIZED VIEW {s}.monthly_revenue AS
    SELECT date_trunc('month', placed_on) AS month, sum(amount) AS revenue FROM {s}.orders GROUP BY 1
    WITH NO DATA;
CREATE UNIQUE INDEX monthly_revenue_key ON {s}.monthly_revenue (month);

CREATE MATERIALIZED VIEW {s}.top_customers AS
    SELECT customer_id, total FROM {s}.customer_totals ORDER BY total DESC LIMIT 10;

CREATE VIEW {s}.loyal_customers AS SELECT customer_id FROM {s}.customer_totals WHERE orders >= 10;
CREATE MATERIALIZED VIEW {s}.loyal_summary AS SELECT count(*) AS loyal FROM {s}.loyal_customers;
"""

DROP_SQL = """
DROP SCHEMA IF EXISTS {s} CASCADE;
DROP SERVER IF EXISTS {s}_server CASCADE;
DROP FOREIGN DATA WRAPPER IF EXISTS {s}_fdw CASCADE;
"""


@contextmanager
def warehouse_schema(db, test_env, sql: str = FIXTURE_SQL) -> Iterator[str]:
    """Create the fixture under a fresh schema name, owned by the platform's role (it refreshes its
    materialized views) as ``roles setup --own-schema`` makes it; drop it (and its foreign server) afterwards."""
    from tests.support.environment import grant_schema

    schema = f"shop_{secrets.token_hex(3)}"
    db.execute(sql.format(s=schema))
    grant_schema(test_env, db, schema, platform_owns=True)
    try:
        yield schema
    finally:
        db.execute(DROP_SQL.format(s=schema))
