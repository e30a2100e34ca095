"""Pure logic of the dbt side: project settings, breaker classification, docs publishing, manifest."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from types import SimpleNamespace

import airflow  # noqa: F401  (Airflow first: Cosmos imported before it has a circular import)
import pytest

from devstack.airflow_env import dbt_environment
from hooks.dbt_breaker import unreachable_warehouse_reason
from include.transform.docs import DocsPublishError, docs_location, publish_docs
from include.transform.manifest import manifest_is_current
from include.transform.project import BUNDLED_PROJECT, DbtProject, DbtProjectError

# ----------------------------------------------------------------------------- project settings


def test_the_bundled_project_is_the_default_and_its_profile_is_the_warehouse_connection():
    project = DbtProject.from_env({})
    assert project.project_path == BUNDLED_PROJECT
    assert project.profiles_yml is None  # the `warehouse` connection, through Cosmos's profile mapping
    assert project.manifest_path == BUNDLED_PROJECT / "target" / "manifest.json"
    assert (project.project_name, project.profile_name, project.target_name) == ("analytics", "analytics", "warehouse")
    assert (project.docs_slug, project.schema, project.threads) == ("analytics", "analytics", 4)


def test_the_profile_maps_the_warehouse_connection_without_needing_a_password(monkeypatch):
    from include.transform.profile import profile_config

    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", "postgresql://etl@db.internal:6543/warehouse")
    config = profile_config(DbtProject.from_env({"DBT_SCHEMA": "shop", "DBT_THREADS": "8"}))
    mapping = config.profile_mapping
    assert (mapping.conn_id, config.profile_name, config.target_name) == ("warehouse", "analytics", "warehouse")
    profile = mapping.profile
    assert (profile["host"], profile["port"], profile["user"], profile["dbname"]) == (
        "db.internal",
        6543,
        "etl",
        "warehouse",
    )
    assert (profile["schema"], profile["threads"], profile["retries"]) == ("shop", 8, 0)
    assert mapping.env_vars[mapping.get_env_var_name("password")] == ""  # trust authentication: no password
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", "postgresql://etl:s%40cret@db.internal:6543/warehouse")
    mapping = profile_config(DbtProject.from_env({})).profile_mapping
    assert mapping.env_vars[mapping.get_env_var_name("password")] == "s@cret"  # an env var, never in the file
    assert "s@cret" not in mapping.get_profile_file_contents("analytics", "warehouse")


def test_a_projects_own_profiles_yml_is_used_when_dbt_profiles_dir_is_set(tmp_path):
    from include.transform.profile import profile_config

    (tmp_path / "profiles.yml").write_text("analytics:\n  target: ci\n")
    config = profile_config(DbtProject.from_env({"DBT_PROFILES_DIR": str(tmp_path)}))
    assert (config.profiles_yml_filepath, config.target_name, config.profile_mapping) == (
        tmp_path / "profiles.yml",
        "ci",
        None,
    )


def test_dbt_threads_must_be_a_number():
    with pytest.raises(DbtProjectError, match="DBT_THREADS='many'"):
        DbtProject.from_env({"DBT_THREADS": "many"})


def test_the_execution_mode_is_watcher_unless_set_and_a_wrong_one_is_named():
    from include.transform.watcher import DbtExecutionMode

    assert DbtExecutionMode.from_env({}) is DbtExecutionMode.WATCHER
    assert DbtExecutionMode.from_env({"DBT_EXECUTION_MODE": " Local "}) is DbtExecutionMode.LOCAL
    with pytest.raises(ValueError, match=r"DBT_EXECUTION_MODE='fast'.*watcher, local"):
        DbtExecutionMode.from_env({"DBT_EXECUTION_MODE": "fast"})


def test_environment_overrides_every_setting(tmp_path):
    (tmp_path / "dbt_project.yml").write_text("name: shop\nprofile: shop_profile\n")
    env = {
        "DBT_PROJECT_PATH": str(tmp_path),
        "DBT_PROFILES_DIR": "/etc/dbt",
        "DBT_MANIFEST_PATH": str(tmp_path / "m.json"),
        "DBT_PROFILE": "other",
        "DBT_TARGET": "prod",
        "DBT_DOCS_SLUG": "shop",
    }
    project = DbtProject.from_env(env)
    assert project.profiles_yml == Path("/etc/dbt/profiles.yml")
    assert project.manifest_path == tmp_path / "m.json"
    assert (project.project_name, project.profile_name, project.target_name, project.docs_slug) == (
        "shop",
        "other",
        "prod",
        "shop",
    )


def test_a_missing_project_is_named_with_its_variable(tmp_path):
    with pytest.raises(DbtProjectError, match=r"DBT_PROJECT_PATH.*nowhere/dbt_project.yml"):
        DbtProject.from_env({"DBT_PROJECT_PATH": str(tmp_path / "nowhere")})


def test_a_profile_missing_from_profiles_yml_is_named(tmp_path):
    (tmp_path / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    (tmp_path / "profiles.yml").write_text("other:\n  target: dev\n")
    with pytest.raises(DbtProjectError, match=r"no profile 'shop'.*\['other'\]"):
        DbtProject.from_env({"DBT_PROJECT_PATH": str(tmp_path), "DBT_PROFILES_DIR": str(tmp_path)})


def test_without_a_manifest_it_renders_with_dbt_ls_and_says_so(tmp_path, caplog):
    from cosmos.constants import LoadMode

    (tmp_path / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    project = DbtProject.from_env({"DBT_PROJECT_PATH": str(tmp_path), "DBT_TARGET": "dev"})
    with caplog.at_level(logging.WARNING, logger="include.transform.project"):
        assert project.load_mode() == LoadMode.DBT_LS
    assert "dbt manifest" in caplog.text and "not found" in caplog.text and "make dbt-manifest" in caplog.text
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "manifest.json").write_text("{}")
    assert project.load_mode() == LoadMode.DBT_MANIFEST


def test_dbt_deps_only_when_packages_are_declared_and_not_installed(tmp_path):
    (tmp_path / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    project = DbtProject.from_env({"DBT_PROJECT_PATH": str(tmp_path), "DBT_TARGET": "dev"})
    assert not project.needs_dbt_deps
    (tmp_path / "packages.yml").write_text("packages: []\n")
    assert project.needs_dbt_deps
    (tmp_path / "dbt_packages").mkdir()
    assert not project.needs_dbt_deps


def test_cosmos_settings_publish_the_docs_under_the_airflow_home(tmp_path):
    docs = json.loads(dbt_environment(tmp_path)["AIRFLOW__COSMOS__DBT_DOCS_PROJECTS"])
    assert docs["analytics"]["dir"] == str(tmp_path / "dbt_docs" / "analytics")


# ----------------------------------------------------------------------------- breaker classification


def _runner_result(success=False, exception=None, results=()):
    return SimpleNamespace(success=success, exception=exception, result=SimpleNamespace(results=list(results)))


def _node(status, message):
    return SimpleNamespace(status=status, message=message, node=SimpleNamespace(name="m"))


def test_a_connection_failure_counts():
    from dbt.adapters.exceptions.connection import FailedToConnectError

    error = FailedToConnectError('connection to server at "db", port 5432 failed: Connection refused')
    assert "Connection refused" in unreachable_warehouse_reason(_runner_result(exception=error))


def test_a_connection_lost_during_a_model_counts():
    lost = _node("error", "Database Error in model m\n  server closed the connection unexpectedly")
    assert "server closed the connection" in unreachable_warehouse_reason(_runner_result(results=[lost]))


@pytest.mark.parametrize(
    "result",
    [
        _runner_result(success=True),
        _runner_result(results=[_node("fail", "Got 3 results, configured to fail if != 0")]),
        _runner_result(results=[_node("error", 'Database Error in model m\n  relation "x" does not exist')]),
        _runner_result(exception=RuntimeError("Compilation Error in model m")),
        SimpleNamespace(exit_code=1, full_output=["Failure in test unique_x", "Got 2 results"]),
    ],
    ids=["success", "failing-test", "sql-error", "compilation-error", "subprocess-test-failure"],
)
def test_the_projects_own_failures_do_not_count(result):
    assert unreachable_warehouse_reason(result) is None


def test_a_connection_failure_is_found_in_subprocess_output():
    output = ["Running with dbt=1.11", "  connection to server at 127.0.0.1, port 1 failed: Connection refused"]
    assert "Connection refused" in unreachable_warehouse_reason(SimpleNamespace(exit_code=2, full_output=output))


def test_metrics_name_the_dbt_command():
    from operators.guarded_dbt import _command_label

    assert _command_label(["/bin/dbt", "source", "freshness", "--select", "source:raw.orders"]) == "source_freshness"
    assert _command_label(["/bin/dbt", "docs", "generate"]) == "docs_generate"
    assert _command_label(["/bin/dbt", "run", "--select", "x"]) == "run"
    assert _command_label(["/bin/dbt", "test"]) == "test"


# ----------------------------------------------------------------------------- docs


def test_docs_location_errors_say_what_to_configure():
    with pytest.raises(DocsPublishError, match="AIRFLOW__COSMOS__DBT_DOCS_PROJECTS is not set"):
        docs_location("analytics", setting="")
    with pytest.raises(DocsPublishError, match="not valid JSON"):
        docs_location("analytics", setting="{nope")
    with pytest.raises(DocsPublishError, match=r"no 'dir' for docs project 'analytics' \(configured: \['shop'\]\)"):
        docs_location("analytics", setting='{"shop": {"dir": "/x"}}')
    location = docs_location("shop", setting='{"shop": {"dir": "s3://bucket/docs", "conn_id": "aws"}}')
    assert (location.dir, location.conn_id, location.index, location.is_remote) == (
        "s3://bucket/docs",
        "aws",
        "index.html",
        True,
    )


def _generated_docs(project_dir: Path, *names: str) -> None:
    (project_dir / "target").mkdir(parents=True)
    for name in names:
        (project_dir / "target" / name).write_text(f"<{name}>")


def test_publish_docs_copies_the_artefacts_where_the_ui_reads_them(tmp_path, monkeypatch):
    docs_dir = tmp_path / "served" / "analytics"
    monkeypatch.setenv("AIRFLOW__COSMOS__DBT_DOCS_PROJECTS", json.dumps({"analytics": {"dir": str(docs_dir)}}))
    _generated_docs(tmp_path / "run", "index.html", "manifest.json", "catalog.json", "run_results.json")

    published = publish_docs(str(tmp_path / "run"), slug="analytics")

    assert sorted(Path(p).name for p in published) == ["catalog.json", "index.html", "manifest.json"]
    assert sorted(p.name for p in docs_dir.iterdir()) == ["catalog.json", "index.html", "manifest.json"]
    assert (docs_dir / "catalog.json").read_text() == "<catalog.json>"


def test_publish_docs_refuses_an_incomplete_generation(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__COSMOS__DBT_DOCS_PROJECTS", json.dumps({"analytics": {"dir": str(tmp_path / "d")}}))
    _generated_docs(tmp_path / "run", "index.html")
    with pytest.raises(DocsPublishError, match=r"did not produce \['manifest.json', 'catalog.json'\]"):
        publish_docs(str(tmp_path / "run"), slug="analytics")
    assert not (tmp_path / "d").exists()


# ----------------------------------------------------------------------------- manifest


def test_a_manifest_older_than_a_model_is_not_current(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    model = tmp_path / "models" / "m.sql"
    model.write_text("select 1")
    project = DbtProject.from_env({"DBT_PROJECT_PATH": str(tmp_path), "DBT_TARGET": "dev"})
    assert not manifest_is_current(project)
    (tmp_path / "target").mkdir()
    project.manifest_path.write_text("{}")
    past = time.time() - 60
    os.utime(model, (past, past))
    os.utime(tmp_path / "dbt_project.yml", (past, past))
    assert manifest_is_current(project)
    model.write_text("select 2")
    assert not manifest_is_current(project)
