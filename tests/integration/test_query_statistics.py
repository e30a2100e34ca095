"""Query statistics: pg_stat_statements deltas on a throw-away cluster that loads the extension,
and the skipped path on the shared server, which does not load it.

The shared PostgreSQL must not be reconfigured, so the "extension available" test starts its own
cluster (initdb into a temporary directory, its own port, ``shared_preload_libraries``) and stops it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from include.analytics.config import QueryStatisticsSettings
from include.analytics.query_stats import collect_query_statistics
from tests.support.servers import free_port

PROBE = "SELECT count(*) FROM pgss_probe WHERE x > %s"


@pytest.fixture(scope="module")
def pgss_server() -> Iterator[str]:
    """A PostgreSQL cluster of its own with pg_stat_statements preloaded; yields its base URL."""
    from devstack.services import start_postgres_cluster

    base = Path(tempfile.mkdtemp(prefix="pgss-cluster-"))
    port = free_port()
    cluster = start_postgres_cluster(
        base, port, "shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=all"
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pgss_warehouse(pgss_server, monkeypatch):
    """A warehouse database on that cluster: migrated, with the extension and a probe table."""
    import psycopg

    from hooks.warehouse import WarehouseHook
    from include.migrations import apply_migrations

    with psycopg.connect(f"{pgss_server}/postgres", autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS warehouse")
        admin.execute("CREATE DATABASE warehouse")
    url = f"{pgss_server}/warehouse"
    with psycopg.connect(url) as conn:
        apply_migrations(conn)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE TABLE pgss_probe AS SELECT g AS x FROM generate_series(1, 1000) g")
    monkeypatch.setenv("AIRFLOW_CONN_PGSS_WAREHOUSE", url)
    return url, WarehouseHook(warehouse_conn_id="pgss_warehouse")


def _probe(url: str, times: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(times):
            conn.execute(PROBE, [i]).fetchone()


def _probe_rows(url: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT calls, rows, basis, total_exec_time_ms >= 0, window_start < window_end "
            "FROM analytics_query_statistics WHERE query LIKE '%%pgss_probe%%' ORDER BY id"
        ).fetchall()


def test_deltas_between_samples_survive_a_full_reset_and_an_entry_reset(pgss_warehouse):
    import psycopg

    url, hook = pgss_warehouse
    settings = QueryStatisticsSettings(top_n=20)

    first = collect_query_statistics(hook, settings, dag_run_id="s1")
    assert (first.status, first.first_sample, first.stored) == ("success", True, 0)

    _probe(url, 5)
    second = collect_query_statistics(hook, settings, dag_run_id="s2")
    assert second.status == "success" and not second.first_sample
    assert second.window_start == first.window_end
    _probe(url, 3)
    collect_query_statistics(hook, settings, dag_run_id="s3")
    assert _probe_rows(url) == [(5, 5, "new_entry", True, True), (3, 3, "delta", True, True)]

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    _probe(url, 2)
    after_reset = collect_query_statistics(hook, settings, dag_run_id="s4")
    assert after_reset.stats_reset is True
    assert _probe_rows(url)[-1] == (2, 2, "stats_reset", True, True)

    with psycopg.connect(url, autocommit=True) as conn:
        (queryid,) = conn.execute("SELECT queryid FROM pg_stat_statements WHERE query LIKE '%%pgss_probe%%'").fetchone()
        conn.execute("SELECT pg_stat_statements_reset(0, 0, %s)", [queryid])
    _probe(url, 1)
    collect_query_statistics(hook, settings, dag_run_id="s5")
    assert _probe_rows(url)[-1] == (1, 1, "entry_reset", True, True)

    with psycopg.connect(url) as conn:
        logged = conn.execute(
            "SELECT dag_run_id, status FROM analytics_refresh_log WHERE job = 'query_statistics' ORDER BY id"
        ).fetchall()
        ranks = conn.execute("SELECT DISTINCT rank FROM analytics_query_statistics WHERE dag_run_id = 's2'").fetchall()
    assert logged == [(f"s{i}", "success") for i in range(1, 6)]
    assert sorted(r for (r,) in ranks) == list(range(1, len(ranks) + 1))


def test_without_the_library_loaded_the_run_is_skipped_with_the_reason(db):
    from hooks.warehouse import WarehouseHook

    hook = WarehouseHook()
    not_installed = collect_query_statistics(hook, QueryStatisticsSettings(), dag_run_id="missing-1")
    assert not_installed.status == "skipped"
    assert "pg_stat_statements extension is not installed in database" in not_installed.reason

    # installed in the database but not preloaded by the (shared, unchangeable) server
    db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    try:
        not_loaded = collect_query_statistics(hook, QueryStatisticsSettings(), dag_run_id="missing-2")
    finally:
        db.execute("DROP EXTENSION pg_stat_statements")
    assert not_loaded.status == "skipped"
    assert "installed but not loaded" in not_loaded.reason and "shared_preload_libraries" in not_loaded.reason
    rows = db.execute(
        "SELECT dag_run_id, status, error FROM analytics_refresh_log "
        "WHERE job = 'query_statistics' AND dag_run_id LIKE 'missing-%%' ORDER BY id"
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [("missing-1", "skipped"), ("missing-2", "skipped")]
    assert rows[1][2] == not_loaded.reason
