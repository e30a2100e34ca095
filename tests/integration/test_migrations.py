"""Schema migrations: idempotent, serialised across processes, protected against edits."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import psycopg
import pytest

from include.migrations import MigrationError, apply_migrations, discover_migrations


def _apply_after_barrier(url: str, barrier, results) -> None:  # runs in a child process
    with psycopg.connect(url) as conn:
        barrier.wait()
        results.put(apply_migrations(conn))


def test_two_processes_applying_at_once_apply_each_version_exactly_once(scratch_database):
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_apply_after_barrier, args=(scratch_database, barrier, results)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    applied = sorted([results.get(timeout=5), results.get(timeout=5)], key=len)
    expected = [m.version for m in discover_migrations()]
    assert applied == [[], expected]  # one process did all the work, the other found nothing to do
    with psycopg.connect(scratch_database) as conn:
        rows = conn.execute("SELECT version, count(*) FROM schema_migrations GROUP BY version ORDER BY 1").fetchall()
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert rows == [(v, 1) for v in expected]
    assert {
        "analytics_catalog",
        "analytics_alerts",
        "analytics_reports",
        "analytics_refresh_log",
        "worker_metrics",
        "task_statistics",
        "health_checks",
    } <= tables


def test_applying_again_is_a_no_op(scratch_database):
    with psycopg.connect(scratch_database) as conn:
        first = apply_migrations(conn)
        second = apply_migrations(conn)
    assert first and second == []


def test_an_applied_migration_that_was_edited_is_refused(scratch_database, tmp_path: Path):
    migration = tmp_path / "V001__first.sql"
    migration.write_text("CREATE TABLE first_table (id int);")
    with psycopg.connect(scratch_database) as conn:
        assert apply_migrations(conn, discover_migrations(tmp_path)) == [1]
        migration.write_text("CREATE TABLE first_table (id bigint);")
        with pytest.raises(MigrationError, match="V001 .*first.* was edited"):
            apply_migrations(conn, discover_migrations(tmp_path))


def test_a_failing_migration_leaves_no_version_row_and_stops(scratch_database, tmp_path: Path):
    (tmp_path / "V001__good.sql").write_text("CREATE TABLE good (id int);")
    (tmp_path / "V002__bad.sql").write_text("CREATE TABLE bad (id int); SELECT * FROM missing_table;")
    (tmp_path / "V003__later.sql").write_text("CREATE TABLE later (id int);")
    with psycopg.connect(scratch_database) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            apply_migrations(conn, discover_migrations(tmp_path))
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
        bad_exists = conn.execute("SELECT to_regclass('bad') IS NOT NULL").fetchone()[0]
    assert versions == [1] and not bad_exists


@pytest.mark.parametrize("name", ["V1_missing_separator.sql", "v002__lowercase.sql", "V003__Has-Dash.sql"])
def test_malformed_migration_file_names_are_rejected(tmp_path: Path, name: str):
    (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="must be named"):
        discover_migrations(tmp_path)


def test_duplicate_versions_are_rejected(tmp_path: Path):
    (tmp_path / "V004__one.sql").write_text("SELECT 1;")
    (tmp_path / "V4__two.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="version 4 already used"):
        discover_migrations(tmp_path)
