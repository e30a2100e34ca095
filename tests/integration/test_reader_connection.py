"""The reader connection: provisioned by ``python -m include roles``, checked before every session.

Real roles on the real server. Roles a test creates have names of their own and are dropped.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote, urlsplit

import psycopg
import pytest
from psycopg import sql

from devstack.services import as_role
from hooks.warehouse import ReaderConnectionRefused, WarehouseReaderHook
from include.security.reader import PLATFORM_SCHEMA, platform_tables, reader_hook
from include.security.roles import drop_roles


def _role(url: str) -> str:
    return urlsplit(url).username


@pytest.fixture
def scratch_roles(db):
    """Names for roles the test creates; dropped afterwards."""
    names: list[str] = []

    def new(kind: str) -> str:
        names.append(f"{kind}_{secrets.token_hex(4)}")
        return names[-1]

    yield new
    drop_roles(db, names)


def test_the_session_reader_passes_the_check_and_reads_only_what_it_was_granted(test_env):
    hook = reader_hook("tests")
    conn = hook.get_conn()
    try:
        assert conn.execute("SELECT session_user").fetchone()[0] == _role(test_env.reader_url)
        assert conn.execute("SELECT count(*) FROM raw.customers").fetchone()[0] == 5
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="analytics_alerts"):
            conn.execute("SELECT count(*) FROM analytics_alerts")
    finally:
        conn.close()


def test_the_migrations_create_exactly_the_tables_the_reader_is_kept_from(db, test_env):
    owned = db.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND pg_get_userbyid(c.relowner) = %s",
        [PLATFORM_SCHEMA, _role(test_env.platform_url)],
    ).fetchall()
    assert {name for (name,) in owned} == set(platform_tables())


def test_a_reader_reaching_server_programs_through_a_group_role_is_refused(db, test_env, scratch_roles):
    group = scratch_roles("report_writers")
    reader = _role(test_env.reader_url)
    db.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(group)))
    db.execute(sql.SQL("GRANT pg_execute_server_program TO {}").format(sql.Identifier(group)))
    db.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(reader)))
    try:
        with pytest.raises(ReaderConnectionRefused) as refused:
            reader_hook("tests").get_conn()
    finally:
        db.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(group), sql.Identifier(reader)))
    message = str(refused.value)
    assert message.startswith(f"connection 'warehouse_reader' (role {reader}) may not run user SQL")
    assert f"is a member of pg_execute_server_program ({reader} -> {group} -> pg_execute_server_program)" in message
    assert "runs programs on the database server" in message


def test_set_role_on_a_privileged_login_is_not_a_reader(test_env, monkeypatch):
    """Logging in as the administrator with ``role=<reader>``: user SQL could reset the role, so it is refused."""
    options = quote(f"-c role={_role(test_env.reader_url)}")
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_READER", f"{test_env.database_url}?options={options}")

    with pytest.raises(ReaderConnectionRefused, match=r"\(role \w+\) may not run user SQL: it is a superuser"):
        reader_hook("tests").get_conn()


def test_the_platform_role_is_not_a_reader(test_env, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_READER", test_env.platform_url)

    with pytest.raises(ReaderConnectionRefused) as refused:
        reader_hook("tests").get_conn()

    assert f"may read or change the platform table {PLATFORM_SCHEMA}.analytics_alerts" in str(refused.value)


def test_a_missing_reader_connection_is_refused_without_falling_back_to_the_platform():
    with pytest.raises(ReaderConnectionRefused, match="connection 'no_such_reader' is not defined"):
        WarehouseReaderHook(warehouse_reader_conn_id="no_such_reader").get_conn()


def test_roles_setup_is_idempotent_and_check_reports_a_privileged_reader(scratch_roles, scratch_database, monkeypatch):
    # On a database of its own: setup hands the platform's tables to the platform role it names, and
    # dropping that scratch role afterwards must not take the session's tables with it.
    from include.__main__ import main

    platform, reader = scratch_roles("platform"), scratch_roles("reader")
    monkeypatch.setenv("DATABASE_URL", scratch_database)  # an administrator
    with psycopg.connect(scratch_database, autocommit=True) as admin:
        admin.execute("CREATE SCHEMA setup_marts")
        admin.execute("CREATE TABLE setup_marts.before (id int)")
        args = ["roles", "setup", "--platform-role", platform, "--reader-role", reader, "--grant-schema", "setup_marts"]
        assert main(args) == 0
        assert main(args) == 0  # again: nothing changes, nothing fails
        assert main(["roles", "check", "--reader-role", reader]) == 0
        admin.execute(sql.SQL("GRANT pg_read_server_files TO {}").format(sql.Identifier(reader)))
        assert main(["roles", "check", "--reader-role", reader]) == 1
        assert main(args) == 0  # setup takes the direct membership away again
        assert main(["roles", "check", "--reader-role", reader]) == 0
        with psycopg.connect(as_role(scratch_database, reader)) as conn:
            assert conn.execute("SELECT count(*) FROM setup_marts.before").fetchone() == (0,)
            assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
