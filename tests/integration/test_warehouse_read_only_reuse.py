"""WarehouseHook.read_only_transaction reusing one connection for many transactions (alert batches)."""

from __future__ import annotations

import psycopg
import pytest

from hooks.warehouse import WarehouseHook, run_single_statement


def test_a_reused_connection_stays_open_read_only_and_keeps_no_session_state():
    hook = WarehouseHook()
    conn = hook.get_conn()
    try:
        with hook.read_only_transaction(statement_timeout=5, connection=conn) as tx:
            run_single_statement(tx, "SET search_path = pg_catalog")  # undone by the rollback
        with hook.read_only_transaction(statement_timeout=5, connection=conn) as tx:
            assert run_single_statement(tx, "SHOW search_path").fetchone()[0] != "pg_catalog"
            assert run_single_statement(tx, "SHOW transaction_read_only").fetchone()[0] == "on"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            with hook.read_only_transaction(statement_timeout=5, connection=conn) as tx:
                run_single_statement(tx, "CREATE TABLE not_allowed (id int)")
        with pytest.raises(psycopg.errors.QueryCanceled):
            with hook.read_only_transaction(statement_timeout=0.2, connection=conn) as tx:
                run_single_statement(tx, "SELECT pg_sleep(2)")
        with hook.read_only_transaction(statement_timeout=5, connection=conn) as tx:
            assert run_single_statement(tx, "SELECT 1").fetchone()[0] == 1  # still usable
        assert not conn.closed
    finally:
        conn.close()
