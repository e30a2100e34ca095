"""The environment every local Airflow process of the project runs with (``make run`` and tests).

It mirrors what the Astro image sets: ``AIRFLOW_HOME`` with the project on ``PYTHONPATH`` (so
``include`` imports) and ``plugins/`` importable, examples off, LocalExecutor on SQLite.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def airflow_environment(
    home: Path,
    *,
    database_url: str,
    redis_url: str,
    api_port: int = 8080,
    metadata_db_url: str | None = None,
) -> dict[str, str]:
    """Environment variables (to add to ``os.environ``) for an Airflow process of this project."""
    root = PROJECT_ROOT
    python_path = [str(root), str(root / "plugins")]
    if os.environ.get("PYTHONPATH"):
        python_path.append(os.environ["PYTHONPATH"])
    return {
        "AIRFLOW_HOME": str(home),
        "PYTHONPATH": os.pathsep.join(python_path),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db_url or f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{api_port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{api_port}/execution/",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # The platform's own settings (the old worker's names).
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DBT_PROJECT_PATH": os.environ.get("DBT_PROJECT_PATH", str(root / "dbt")),
        "DBT_PROFILES_DIR": os.environ.get("DBT_PROFILES_DIR", str(root / "dbt")),
        **dbt_environment(home, database_url=database_url),
    }


def dbt_profile_environment(database_url: str) -> dict[str, str]:
    """The dbt profile's connection (``dbt/profiles.yml`` reads ``DBT_PG_*``): the warehouse at ``database_url``."""
    parts = urlsplit(database_url)
    env = {
        "DBT_PG_HOST": parts.hostname or "127.0.0.1",
        "DBT_PG_PORT": str(parts.port or 5432),
        "DBT_PG_USER": unquote(parts.username or "postgres"),
        "DBT_PG_DBNAME": unquote(parts.path.lstrip("/")) or "analytics",
    }
    if parts.password:
        env["DBT_ENV_SECRET_PG_PASSWORD"] = unquote(parts.password)
    return env


def dbt_environment(home: Path, *, database_url: str) -> dict[str, str]:
    """The dbt profile's connection and Cosmos's settings for an Airflow process of the project.

    The dbt docs are published to, and served by the UI from, ``<home>/dbt_docs/analytics``.
    """
    return {
        **dbt_profile_environment(database_url),
        "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS": json.dumps(
            {"analytics": {"dir": str(home / "dbt_docs" / "analytics"), "name": "dbt Docs (Analytics)"}}
        ),
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    }
