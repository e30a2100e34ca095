"""The ``dbt`` circuit breaker with real dbt invocations and real Redis.

Only dbt runs that cannot reach the warehouse count; a failing data test or a SQL error in a
model does not. Three counted failures open the breaker and further dbt calls are refused
(rescheduled) without running dbt.
"""

from __future__ import annotations

import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from hooks.dbt_breaker import DbtWarehouseUnreachableError, breaker_target, dbt_breaker, guarded_dbt_invocation
from tests.support.servers import free_port

PROFILE, TARGET = "analytics", "warehouse"


@pytest.fixture(scope="module")
def profiles_dir(tmp_path_factory, database_url: str) -> Path:
    """A profiles.yml for the session's warehouse whose port ``PROBE_PG_PORT`` can move (to nowhere)."""
    from urllib.parse import urlsplit

    parts = urlsplit(database_url)
    directory = tmp_path_factory.mktemp("probe_profiles")
    (directory / "profiles.yml").write_text(
        textwrap.dedent(f"""
        {PROFILE}:
          target: {TARGET}
          outputs:
            {TARGET}:
              type: postgres
              host: "{parts.hostname}"
              port: "{{{{ env_var('PROBE_PG_PORT', '{parts.port or 5432}') | int }}}}"
              user: "{parts.username or "postgres"}"
              password: ""
              dbname: "{parts.path.lstrip("/")}"
              schema: breaker_probe
              threads: 1
              connect_timeout: 3
              retries: 0
        """)
    )
    return directory


@pytest.fixture(scope="module")
def probe_project(tmp_path_factory) -> Path:
    """A tiny dbt project: a good model with a failing test, and a model with a SQL error."""
    root = tmp_path_factory.mktemp("breaker_probe")
    (root / "models").mkdir()
    (root / "tests").mkdir()
    (root / "dbt_project.yml").write_text(
        textwrap.dedent(f"""
        name: breaker_probe
        version: "1.0.0"
        config-version: 2
        profile: {PROFILE}
        models:
          breaker_probe:
            +materialized: table
        """)
    )
    (root / "models" / "ok.sql").write_text("select 1 as id\n")
    (root / "models" / "broken.sql").write_text("select * from table_that_does_not_exist\n")
    (root / "tests" / "ok_is_empty.sql").write_text("select * from {{ ref('ok') }}\n")
    return root


def _operator(cls, project: Path, profiles_dir: Path):
    from cosmos.config import ProfileConfig
    from cosmos.constants import InvocationMode

    profile = ProfileConfig(
        profile_name=PROFILE, target_name=TARGET, profiles_yml_filepath=profiles_dir / "profiles.yml"
    )
    return cls(
        task_id="probe", project_dir=str(project), profile_config=profile, invocation_mode=InvocationMode.DBT_RUNNER
    )


def _command(project: Path, profiles_dir: Path, *args: str) -> list[str]:
    return [
        str(Path(sys.executable).parent / "dbt"),
        *args,
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(profiles_dir),
        "--profile",
        PROFILE,
        "--target",
        TARGET,
    ]


def _env(**overrides: str) -> dict[str, str]:
    import os

    return {**os.environ, **overrides}


def _status():
    from hooks.circuit_breaker import default_store, read_status

    return read_status(default_store(), "dbt", breaker_target(PROFILE, TARGET))


def test_failing_tests_and_sql_errors_do_not_count_against_the_warehouse(probe_project, profiles_dir, redis_client):
    from operators.guarded_dbt import GuardedDbtRunLocalOperator, GuardedDbtTestLocalOperator

    run = _operator(GuardedDbtRunLocalOperator, probe_project, profiles_dir)
    broken = run.run_dbt_runner(
        _command(probe_project, profiles_dir, "run", "--select", "broken"), _env(), str(probe_project)
    )
    assert broken.success is False  # a SQL error: dbt answered
    built = run.run_dbt_runner(
        _command(probe_project, profiles_dir, "run", "--select", "ok"), _env(), str(probe_project)
    )
    assert built.success is True
    test = _operator(GuardedDbtTestLocalOperator, probe_project, profiles_dir)
    failed_test = test.run_dbt_runner(
        _command(probe_project, profiles_dir, "test", "--select", "ok"), _env(), str(probe_project)
    )
    assert failed_test.success is False
    assert [r.status for r in failed_test.result.results] == ["fail"]

    status = _status()
    assert (status.state, status.failures) == ("closed", 0)


def test_three_unreachable_runs_open_the_breaker_and_then_dbt_is_not_called(probe_project, profiles_dir, redis_client):
    from hooks.circuit_breaker import CircuitOpenError
    from operators.guarded_dbt import GuardedDbtRunLocalOperator

    closed_port = str(free_port())
    operator = _operator(GuardedDbtRunLocalOperator, probe_project, profiles_dir)
    command = _command(probe_project, profiles_dir, "run", "--select", "ok")
    for attempt in (1, 2, 3):
        with pytest.raises(DbtWarehouseUnreachableError, match="Connection refused"):
            operator.run_dbt_runner(command, _env(PROBE_PG_PORT=closed_port), str(probe_project))
        assert _status().failures == attempt
    status = _status()
    assert status.state == "open"
    assert "Connection refused" in status.last_error

    calls = []
    with pytest.raises(CircuitOpenError) as refused:
        guarded_dbt_invocation(dbt_breaker(PROFILE, TARGET), lambda: calls.append("dbt ran"))
    assert calls == []
    # Rescheduled to when the breaker may half-open (120 s), not failed: no retry is used.
    wait = (refused.value.reschedule_date - datetime.now(UTC)).total_seconds()
    assert 100 < wait <= 121


def test_an_unreachable_warehouse_is_recognised_in_subprocess_mode_too(probe_project, profiles_dir, redis_client):
    from operators.guarded_dbt import GuardedDbtRunLocalOperator

    operator = _operator(GuardedDbtRunLocalOperator, probe_project, profiles_dir)
    with pytest.raises(DbtWarehouseUnreachableError, match="Connection refused"):
        operator.run_subprocess(
            _command(probe_project, profiles_dir, "run", "--select", "ok"),
            _env(PROBE_PG_PORT=str(free_port())),
            str(probe_project),
        )
    assert _status().failures == 1


def test_the_dbt_build_refused_by_the_open_breaker_waits_and_then_runs_without_using_a_retry(
    tmp_path, monkeypatch, redis_client, test_env
):
    """End to end (watcher mode, dag.test): the warehouse fails just before the build's first dbt call
    (opening the breaker), so the call is refused and the build rescheduled while the model's task
    waits; after the 2 s recovery the build's trial call runs and the model's task reports it."""
    import json

    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session

    from hooks import circuit_breaker
    from include.transform.manifest import build_manifest
    from include.transform.project import DbtProject
    from tests.support.dags import run_dag_object
    from tests.support.environment import grant_schema
    from tests.support.transform import in_dependency_order, load_transform_dag

    with psycopg.connect(test_env.database_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS tiny")
        grant_schema(test_env, conn, "tiny", platform_owns=True)  # dbt builds as the platform's role
    project = tmp_path / "tiny"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(f"name: tiny\nversion: '1.0.0'\nconfig-version: 2\nprofile: {PROFILE}\n")
    (project / "models" / "tiny_model.sql").write_text("select 1 as id\n")
    monkeypatch.setenv("DBT_PROJECT_PATH", str(project))
    monkeypatch.setenv("DBT_SCHEMA", "tiny")
    monkeypatch.setenv("DBT_DOCS_SLUG", "tiny")
    monkeypatch.setenv("AIRFLOW__COSMOS__DBT_DOCS_PROJECTS", json.dumps({"tiny": {"dir": str(tmp_path / "docs")}}))
    monkeypatch.setenv("CIRCUIT_BREAKERS", json.dumps({"dbt": {"recovery_timeout": 2}}))
    monkeypatch.setattr(circuit_breaker, "_config_cache", {})
    build_manifest(DbtProject.from_env())  # rendered from a manifest, so parsing is quick
    dag = in_dependency_order(load_transform_dag())
    down = []

    def warehouse_goes_down(context, operator):
        """Cosmos interceptor (runs before the dbt command): three unreachable failures, first call only."""
        if not down:
            down.append(operator.task_id)
            breaker = dbt_breaker(PROFILE, TARGET)
            for _ in range(3):
                with pytest.raises(DbtWarehouseUnreachableError), breaker.guard():
                    raise DbtWarehouseUnreachableError("connection refused")

    dag.get_task("dbt.dbt_build").interceptors = [warehouse_goes_down]

    result = run_dag_object(dag)

    assert down == ["dbt.dbt_build"]
    assert result.state == "success", result.task_states
    assert result.task_states["dbt.tiny_model_model_build"] == "success"
    assert result.try_numbers["dbt.dbt_build"] == 1  # waited, no retry used
    with create_session() as session:
        reschedules = (
            session.query(TaskReschedule)
            .join(TaskInstance, TaskInstance.id == TaskReschedule.ti_id)
            .filter(TaskInstance.run_id == result.run_id, TaskInstance.task_id == "dbt.dbt_build")
            .count()
        )
    assert reschedules >= 1
    assert (_status().state, _status().failures) == ("closed", 0)  # the trial call succeeded
