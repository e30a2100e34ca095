"""Catalog refresh on 5,000 tables / 10 million rows, against the bare metadata read and a naive loop.

Builds a scratch database of its own (dropped at the end): schema ``bench`` with 50 tables of
200,000 rows and 4,950 small ones (0-20 rows), analyzed. Then, interleaved and repeated, times

(a) the full catalog refresh of that schema (``include.analytics.catalog.refresh_catalog`` through
    the warehouse hook: read, exact counts, partition roll-up, upsert, drop marking, log row), in
    steady state: the catalog is populated by a first run (reported as ``first_run_s``) and, before
    each timed run, 5% of the small tables get new rows and are re-analyzed, so rows really change;
(b) the bare set-based read of the same metadata from ``pg_catalog`` (relations with sizes and row
    estimates, columns with types), fetched to the client: the practical floor;
(c) a naive per-table loop: ``information_schema.columns`` for each table plus ``count(*)``.

``ratio`` = (a) / (b), target <= 2.0; ``vs_naive`` = (c) / (a), target >= 3.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from urllib.parse import urlsplit, urlunsplit

from bench.common import Target, finish, print_table

SCHEMA = "bench"
CONN_ID = "bench_catalog_warehouse"
#: A refresh costs at most twice the bare catalog read, and beats the naive per-table loop 3 times over.
TARGET = Target("<=", 2)
VS_NAIVE_TARGET = Target(">=", 3)
#: Statements per transaction while building (each new relation holds a lock until commit).
BATCH = 100

BARE_RELATIONS = """
SELECT c.oid, n.nspname, c.relname, c.relkind, c.reltuples, pg_total_relation_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'v', 'm', 'p', 'f') AND NOT c.relispartition
"""
BARE_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'v', 'm', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped
"""
NAIVE_COLUMNS = """
SELECT column_name, data_type, is_nullable, column_default
FROM information_schema.columns WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position
"""


def _with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def build_schema(url: str, tables: int, big_tables: int, big_rows: int) -> int:
    """Create and fill the scratch schema; return the number of rows in it."""
    import psycopg
    from psycopg import sql

    rng = random.Random(42)
    small_rows = [rng.randint(0, 20) for _ in range(tables - big_tables)]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
        statements = [
            sql.SQL(
                "CREATE TABLE {} (id bigint PRIMARY KEY, customer_id integer NOT NULL, "
                "amount numeric(12, 2), status text DEFAULT 'new', created_at timestamptz NOT NULL)"
            ).format(sql.Identifier(SCHEMA, f"big_{i:03d}"))
            for i in range(big_tables)
        ] + [
            sql.SQL(
                "CREATE TABLE {} (id integer PRIMARY KEY, name text NOT NULL, "
                "value double precision, updated_at timestamptz DEFAULT now())"
            ).format(sql.Identifier(SCHEMA, f"small_{i:04d}"))
            for i in range(tables - big_tables)
        ]
        # Small transactions: thousands of new relations in one would fill the server's shared lock table.
        for chunk in range(0, len(statements), BATCH):
            with conn.transaction():
                for statement in statements[chunk : chunk + BATCH]:
                    conn.execute(statement)
        for i in range(big_tables):
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} SELECT g, g %% 5000, (g %% 10000) / 100.0, 'done', "
                    "timestamptz '2026-01-01' + g * interval '1 minute' FROM generate_series(1, %s) g"
                ).format(sql.Identifier(SCHEMA, f"big_{i:03d}")),
                [big_rows],
            )
        for chunk in range(0, len(small_rows), BATCH):
            with conn.transaction():
                for i, rows in enumerate(small_rows[chunk : chunk + BATCH], start=chunk):
                    if not rows:
                        continue
                    conn.execute(
                        sql.SQL("INSERT INTO {} SELECT g, 'n' || g, g * 1.5 FROM generate_series(1, %s) g").format(
                            sql.Identifier(SCHEMA, f"small_{i:04d}")
                        ),
                        [rows],
                    )
        conn.execute("ANALYZE")
    return big_tables * big_rows + sum(small_rows)


def churn(url: str, small_tables: int, fraction: float, rng: random.Random) -> None:
    """New rows in a fraction of the small tables, re-analyzed: what an hour of use changes."""
    import psycopg
    from psycopg import sql

    picked = rng.sample(range(small_tables), max(1, int(small_tables * fraction)))
    with psycopg.connect(url, autocommit=True) as conn:
        for i in picked:
            table = sql.Identifier(SCHEMA, f"small_{i:04d}")
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} SELECT coalesce(max(id), 0) + g, 'x', 0 FROM {}, generate_series(1, 5) g GROUP BY g"
                ).format(table, table)
            )
            conn.execute(sql.SQL("ANALYZE {}").format(table))


def bare_read(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        relations = conn.execute(BARE_RELATIONS, {"schema": SCHEMA}).fetchall()
        columns = conn.execute(BARE_COLUMNS, {"schema": SCHEMA}).fetchall()
    return len(relations) + len(columns)


def naive_loop(url: str) -> int:
    import psycopg
    from psycopg import sql

    rows = 0
    # autocommit: each count(*) releases its lock at once, as a loop of separate queries would.
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1", [SCHEMA]
        ).fetchall()
        for (table,) in tables:
            conn.execute(NAIVE_COLUMNS, [SCHEMA, table]).fetchall()
            rows += conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(SCHEMA, table))).fetchone()[0]
    return rows


def timed(func, *args) -> float:
    started = time.perf_counter()
    func(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=5000)
    parser.add_argument("--big-tables", type=int, default=50)
    parser.add_argument("--big-rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of (a) and (b)")
    parser.add_argument("--naive-repeat", type=int, default=2, help="timed runs of (c)")
    parser.add_argument("--churn", type=float, default=0.05, help="fraction of small tables changed between runs")
    args = parser.parse_args()

    import psycopg
    from psycopg import sql

    from include.settings import database_url

    base_url = database_url()
    name = f"bench_catalog_{os.getpid()}"
    admin_url = _with_db(base_url, "postgres")
    url = _with_db(base_url, name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = url
        from hooks.warehouse import WarehouseHook
        from include.analytics.catalog import refresh_catalog
        from include.analytics.config import CatalogSettings
        from include.migrations import apply_migrations

        with psycopg.connect(url) as conn:
            apply_migrations(conn)
        started = time.perf_counter()
        total_rows = build_schema(url, args.tables, args.big_tables, args.big_rows)
        print(f"built {args.tables} tables holding {total_rows:,} rows in {time.perf_counter() - started:.1f} s")

        hook = WarehouseHook(warehouse_conn_id=CONN_ID)
        settings = CatalogSettings(schemas=(SCHEMA,))
        first = refresh_catalog(hook, settings)
        first_s = first.duration_ms / 1000
        print(f"first refresh (catalog empty): {first_s:.3f} s, {first.total} objects")

        rng = random.Random(7)
        refresh_s, bare_s, naive_s, written = [], [], [], []
        for i in range(args.repeat):
            churn(url, args.tables - args.big_tables, args.churn, rng)
            bare_s.append(timed(bare_read, url))
            started = time.perf_counter()
            result = refresh_catalog(hook, settings)
            refresh_s.append(time.perf_counter() - started)
            written.append(result.rows_written)
            if i < args.naive_repeat:
                naive_s.append(timed(naive_loop, url))
        a, b, c = statistics.median(refresh_s), statistics.median(bare_s), statistics.median(naive_s)
        print_table(
            ["measurement", "median", "runs"],
            [
                ["(a) catalog refresh (steady state)", f"{a:.3f} s", len(refresh_s)],
                ["(b) bare pg_catalog read", f"{b:.3f} s", len(bare_s)],
                ["(c) naive per-table loop", f"{c:.3f} s", len(naive_s)],
                ["first refresh (empty catalog)", f"{first_s:.3f} s", 1],
            ],
        )
        finish(
            "catalog",
            a / b,
            TARGET,
            checks={"vs_naive": (c / a, VS_NAIVE_TARGET)},
            refresh_s=round(a, 3),
            bare_read_s=round(b, 3),
            naive_s=round(c, 3),
            first_run_s=round(first_s, 3),
            first_run_ratio=round(first_s / b, 2),
            tables=args.tables,
            rows=total_rows,
            rows_rewritten_per_run=int(statistics.median(written)),
        )
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
