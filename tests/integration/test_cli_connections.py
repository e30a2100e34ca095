"""Commands run outside Airflow use the tasks' own Airflow connections, found where Airflow keeps them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from devstack.airflow_env import PROJECT_ROOT


def _command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "include", *args], capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=120
    )


@pytest.fixture
def warehouse_in_metadata_db(test_env):
    """The connection `warehouse` kept in the session's Airflow metadata DB (as the UI or `make run` keep it)."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        stored = session.query(Connection).filter_by(conn_id="warehouse").one_or_none()
        before = stored.get_uri() if stored else None
        if stored:
            session.delete(stored)
            session.flush()
        session.add(Connection(conn_id="warehouse", uri=test_env.platform_url))
    yield
    with create_session() as session:
        session.query(Connection).filter_by(conn_id="warehouse").delete()
        if before:
            session.add(Connection(conn_id="warehouse", uri=before))


def test_a_command_finds_the_connection_in_the_metadata_db_without_any_url(warehouse_in_metadata_db):
    env = {k: v for k, v in os.environ.items() if k not in ("AIRFLOW_CONN_WAREHOUSE", "DATABASE_URL")}
    result = _command(env, "migrate")
    assert result.returncode == 0, result.stderr
    assert "schema is up to date" in result.stdout


def test_without_the_connection_a_command_fails_naming_it(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AIRFLOW_CONN_") and k not in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "DATABASE_URL")
    }
    env["AIRFLOW_HOME"] = str(tmp_path)  # no Airflow metadata DB configured
    result = _command(env, "alerts", "list")
    assert result.returncode != 0
    assert "`warehouse` isn't defined" in result.stderr
    assert not (tmp_path / "airflow.db").exists()  # nothing was created looking for it
