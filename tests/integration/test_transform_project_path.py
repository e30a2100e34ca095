"""``DBT_PROJECT_PATH`` / ``DBT_PROFILES_DIR`` point the ``transform`` DAG at another dbt project.

The second project is made here, has no manifest (so the DAG falls back to ``dbt ls``, with a
warning) and its own profiles directory; the DAG renders and runs it instead of the bundled one.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import psycopg
import pytest

from tests.support.dags import run_dag_object
from tests.support.transform import in_dependency_order, load_transform_dag


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


@pytest.fixture
def second_project(tmp_path: Path, database_url: str) -> tuple[Path, Path]:
    from include.transform.demo_data import load_demo_data

    with psycopg.connect(database_url) as conn:
        load_demo_data(conn)
    project, profiles = tmp_path / "second_project", tmp_path / "profiles"
    _write(
        project / "dbt_project.yml",
        """
        name: second_project
        version: "1.0.0"
        config-version: 2
        profile: second
        models:
          second_project:
            +materialized: table
        """,
    )
    _write(
        project / "models" / "orders_by_customer.sql",
        """
        select customer_id, count(*) as orders
        from {{ source('shop', 'orders') }}
        group by customer_id
        """,
    )
    _write(
        project / "models" / "schema.yml",
        """
        version: 2
        sources:
          - name: shop
            schema: raw
            tables:
              - name: orders
        models:
          - name: orders_by_customer
            description: Orders per customer.
            columns:
              - name: customer_id
                data_tests: [unique, not_null]
        """,
    )
    _write(
        profiles / "profiles.yml",
        """
        second:
          target: ci
          outputs:
            ci:
              type: postgres
              host: "{host}"
              port: {port}
              user: "{user}"
              password: ""
              dbname: "{dbname}"
              schema: second_project
              threads: 1
        """.format(**_connection(database_url)),
    )
    return project, profiles


def _connection(database_url: str) -> dict:
    from urllib.parse import urlsplit

    parts = urlsplit(database_url)
    return {
        "host": parts.hostname,
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "dbname": parts.path.lstrip("/"),
    }


def test_the_dag_renders_and_runs_the_project_dbt_project_path_points_at(
    second_project, tmp_path, monkeypatch, database_url
):
    project, profiles = second_project
    docs_dir = tmp_path / "docs"
    monkeypatch.setenv("DBT_PROJECT_PATH", str(project))
    monkeypatch.setenv("DBT_PROFILES_DIR", str(profiles))
    monkeypatch.setenv("DBT_DOCS_SLUG", "second")
    monkeypatch.setenv("AIRFLOW__COSMOS__DBT_DOCS_PROJECTS", json.dumps({"second": {"dir": str(docs_dir)}}))

    dag = in_dependency_order(load_transform_dag())
    # Cosmos is imported after Airflow (the other way round, Cosmos's policy plugin import is circular).
    from cosmos.constants import LoadMode
    from cosmos.plugin.airflow3 import create_cosmos_fastapi_app
    from fastapi.testclient import TestClient

    # No manifest in that project: rendered with `dbt ls` (tests/unit checks the warning it logs).
    assert dag.task_group_dict["dbt"].dbt_graph.load_method in (LoadMode.DBT_LS, LoadMode.DBT_LS_CACHE)
    assert {t.task_id for t in dag.tasks} == {
        "dbt.dbt_build",  # watcher mode: the one dbt build
        "dbt.orders_by_customer_model_build",
        "generate_docs",
        "dbt_build_passed",
    }

    result = run_dag_object(dag)

    assert result.state == "success", result.task_states
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT customer_id, orders FROM second_project.orders_by_customer ORDER BY 1").fetchall()
    assert rows == [(1, 3), (2, 2), (3, 2), (4, 1)]
    manifest = TestClient(create_cosmos_fastapi_app()).get("/second/manifest.json")
    assert manifest.status_code == 200
    assert manifest.json()["metadata"]["project_name"] == "second_project"
