"""The environment every local Airflow process of the project runs with (``make run`` and tests).

It mirrors what the Astro image sets: ``AIRFLOW_HOME``, the project's ``dags/`` and ``plugins/``
folders, examples off, LocalExecutor on SQLite. The project's packages (``include``, and the
plugins' ``hooks``, ``operators``, ``notifiers``) import because ``make venv`` installs the project
into the venv (editable); the image puts the same folders on ``PYTHONPATH`` (Dockerfile).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlsplit

from include.settings import DEFAULT_AIRFLOW_PORT

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Airflow metrics sent to StatsD (regexes matched against the name without prefix; keep in step
#: with the Dockerfile, tests/unit/test_statsd_mapping.py checks). monitoring/statsd_mapping.yml maps
#: every metric these let through.
STATSD_ALLOW_LIST = (
    "^platform[.],^ti[._],^task,^dag,^pool[.],^executor[.],^scheduler,^operator_,^trigger,^asset[.],"
    "^deadline_alerts[.],^celery[.]"
)


def statsd_environment() -> dict[str, str]:
    """Airflow's ``[metrics]`` settings: StatsD to statsd_exporter (127.0.0.1:9125 unless set already).

    UDP needs no listener: with no exporter running the packets are simply dropped.
    """
    return {
        "AIRFLOW__METRICS__STATSD_ON": os.environ.get("AIRFLOW__METRICS__STATSD_ON", "True"),
        "AIRFLOW__METRICS__STATSD_HOST": os.environ.get("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1"),
        "AIRFLOW__METRICS__STATSD_PORT": os.environ.get("AIRFLOW__METRICS__STATSD_PORT", "9125"),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        "AIRFLOW__METRICS__LEGACY_NAMES_ON": "True",
        "AIRFLOW__METRICS__METRICS_ALLOW_LIST": STATSD_ALLOW_LIST,
    }


#: Settings with which the OpenLineage provider has a transport already (then the local file is not used).
OPENLINEAGE_CONFIGURED_BY = ("AIRFLOW__OPENLINEAGE__TRANSPORT", "AIRFLOW__OPENLINEAGE__CONFIG_PATH", "OPENLINEAGE_URL")
#: The OpenLineage namespace of the platform's jobs (the provider's default is "default").
OPENLINEAGE_NAMESPACE = "analytics-platform"


def openlineage_file(home: Path) -> Path:
    """Where ``make run`` and the tests write OpenLineage events (one JSON event per line)."""
    return home / "openlineage" / "events.jsonl"


def openlineage_environment(home: Path) -> dict[str, str]:
    """The OpenLineage provider's transport: a local file of events, unless one is configured already.

    Point it at Marquez or any OpenLineage backend with ``OPENLINEAGE_URL`` (or
    ``AIRFLOW__OPENLINEAGE__TRANSPORT``); docs/assets-and-lineage.md.
    """
    env = {
        "AIRFLOW__OPENLINEAGE__NAMESPACE": os.environ.get("AIRFLOW__OPENLINEAGE__NAMESPACE", OPENLINEAGE_NAMESPACE),
        # emit from a thread of the task process instead of a forked copy of it (about 30 ms instead
        # of about 120 ms per task here; the provider's option, bounded by its execution_timeout)
        "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": os.environ.get("AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD", "True"),
    }
    if any(os.environ.get(name) for name in OPENLINEAGE_CONFIGURED_BY):
        return env
    path = openlineage_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    transport = {"type": "file", "log_file_path": str(path), "append": True}
    return {**env, "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport)}


def api_connection_environment(home: Path, api_port: int) -> dict[str, str]:
    """``airflow_api`` for the monitoring DAG's task statistics: the local api-server as ``admin``.

    Creates the simple auth manager's password file when missing (it keeps an existing password),
    so the connection can be set before the api-server starts. The result carries the password:
    pass it to the Airflow processes, do not write it to ``.local/env.sh``.
    """
    path = home / "simple_auth_manager_passwords.json.generated"
    passwords = json.loads(path.read_text()) if path.exists() else {}
    if "admin" not in passwords:
        passwords["admin"] = secrets.token_urlsafe(16)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(passwords))
        path.chmod(0o600)
    connection = {"conn_type": "http", "host": f"http://localhost:{api_port}", "login": "admin"}
    return {"AIRFLOW_CONN_AIRFLOW_API": json.dumps({**connection, "password": passwords["admin"]})}


def airflow_environment(
    home: Path,
    *,
    database_url: str,
    redis_url: str,
    api_port: int = DEFAULT_AIRFLOW_PORT,
    metadata_db_url: str | None = None,
) -> dict[str, str]:
    """Environment variables (to add to ``os.environ``) for an Airflow process of this project."""
    root = PROJECT_ROOT
    return {
        "AIRFLOW_HOME": str(home),
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
        # The circuit breakers' Redis (connection circuit_breaker_redis of plugins/hooks/circuit_breaker.py).
        "AIRFLOW_CONN_CIRCUIT_BREAKER_REDIS": redis_connection(redis_url),
        "DBT_PROJECT_PATH": os.environ.get("DBT_PROJECT_PATH", str(root / "dbt")),
        # dbt's profile: the `warehouse` connection, unless a profiles.yml is named (DBT_PROFILES_DIR).
        **({"DBT_PROFILES_DIR": os.environ["DBT_PROFILES_DIR"]} if os.environ.get("DBT_PROFILES_DIR") else {}),
        **statsd_environment(),
        **openlineage_environment(home),
        **dbt_environment(home),
        **legacy_channel_connections(),
    }


def redis_connection(url: str) -> str:
    """The Airflow connection (JSON) of the Redis at ``url`` (``redis://[user:password@]host[:port][/db]``).

    The database index goes in the extra ``db``, where the redis provider's ``RedisHook`` reads it.
    """
    parts = urlsplit(url)
    fields: dict = {"conn_type": "redis", "host": parts.hostname or "127.0.0.1", "port": parts.port or 6379}
    if parts.username:
        fields["login"] = unquote(parts.username)
    if parts.password:
        fields["password"] = unquote(parts.password)
    if parts.path.strip("/"):
        fields["extra"] = {"db": int(parts.path.strip("/"))}
    return json.dumps(fields)


def legacy_channel_connections(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The old worker's alert settings as the Airflow connections the platform uses.

    ``ALERT_WEBHOOK_URL`` becomes ``slack_alerts`` when it is a Slack incoming webhook, else
    ``alert_webhook``; ``ALERT_EMAIL_SMTP_HOST`` (with ``_PORT``, ``_USER``, ``_PASSWORD``, ``_FROM``)
    becomes ``smtp_default``. A connection set explicitly (``AIRFLOW_CONN_*``) wins.
    """
    environ = os.environ if environ is None else environ
    connections: dict[str, dict] = {}
    webhook = environ.get("ALERT_WEBHOOK_URL")
    if webhook:
        if urlsplit(webhook).hostname == "hooks.slack.com":
            connections["SLACK_ALERTS"] = {"conn_type": "slackwebhook", "password": webhook}
        else:
            connections["ALERT_WEBHOOK"] = {"conn_type": "http", "host": webhook}
    smtp_host = environ.get("ALERT_EMAIL_SMTP_HOST")
    if smtp_host:
        smtp: dict = {"conn_type": "smtp", "host": smtp_host, "port": int(environ.get("ALERT_EMAIL_SMTP_PORT", "587"))}
        if environ.get("ALERT_EMAIL_SMTP_USER"):
            smtp["login"] = environ["ALERT_EMAIL_SMTP_USER"]
            smtp["password"] = environ.get("ALERT_EMAIL_SMTP_PASSWORD", "")
        if environ.get("ALERT_EMAIL_FROM"):
            smtp["extra"] = json.dumps({"from_email": environ["ALERT_EMAIL_FROM"]})
        connections["SMTP_DEFAULT"] = smtp
    return {
        f"AIRFLOW_CONN_{name}": json.dumps(fields)
        for name, fields in connections.items()
        if f"AIRFLOW_CONN_{name}" not in environ
    }


def celery_environment(broker_url: str, metadata_db_url: str) -> dict[str, str]:
    """CeleryExecutor settings: Redis broker, result backend in the PostgreSQL metadata database.

    ``result_extended`` makes Celery record which worker (``<queue>@<host>``) ran each task.
    """
    result_backend = "db+" + metadata_db_url.replace("postgresql+psycopg://", "postgresql://")
    return {
        "AIRFLOW__CORE__EXECUTOR": "airflow.providers.celery.executors.celery_executor.CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": '{"result_extended": true}',
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
    }


def dbt_environment(home: Path) -> dict[str, str]:
    """Cosmos's settings for an Airflow process of the project (dbt's profile is the ``warehouse`` connection).

    The dbt docs are published to, and served by the UI from, ``<home>/dbt_docs/analytics``.
    """
    return {
        "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS": json.dumps(
            {"analytics": {"dir": str(home / "dbt_docs" / "analytics"), "name": "dbt Docs (Analytics)"}}
        ),
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    }
