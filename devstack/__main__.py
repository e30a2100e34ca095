"""Run the whole platform locally without Docker: ``python -m devstack up|down|status``.

``up`` reaches (or starts) PostgreSQL and Redis, provisions the platform's role and the reader role
(:data:`LOCAL_ROLES`, as the administrator of ``DATABASE_URL``), applies the platform schema and
loads the dbt demo data as the platform's role, builds the dbt manifest, prepares the Airflow
metadata database, applies ``airflow_settings.yaml`` (``warehouse`` = the platform's role,
``warehouse_reader`` = the reader) and starts the Airflow components (and, with ``--executor
celery``, one Celery worker per category queue): no Airflow process connects as a superuser.
``down`` stops exactly those processes and the project-local services. Both are safe to repeat.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

from devstack import services
from devstack.airflow_env import PROJECT_ROOT
from devstack.stack import LocalStack
from include.security.roles import PASSWORD_ENV, RolePlan
from include.settings import airflow_port

LOCAL_DIR = PROJECT_ROOT / ".local"
CELERY_METADATA_DB = "airflow_metadata"
CELERY_BROKER_DB = 1

log = logging.getLogger("devstack")

#: The roles ``make run`` provisions (fixed, documented names; roles are cluster-wide and shared by
#: every database of the server). The platform owns the demo source data and the dbt targets; the
#: reader may read them. ``devstack/warehouse_roles.sql`` (the Astro warehouse's init script) is
#: ``python -m include roles sql`` of this plan.
LOCAL_DATA_SCHEMAS = ("raw", "staging", "marts")
LOCAL_ROLES = RolePlan(grant_schemas=LOCAL_DATA_SCHEMAS, own_schemas=LOCAL_DATA_SCHEMAS)


def _with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


def prepare_dbt(database_url: str) -> None:
    """Demo source data for the bundled dbt project, and the manifest the transform DAG renders from.

    The demo rows go in only when the DAG renders the bundled project (``DBT_PROJECT_PATH`` unset or
    pointing at ``dbt/``); the manifest is built for whichever project it renders.
    """
    import psycopg

    from include.transform.demo_data import load_demo_data
    from include.transform.project import BUNDLED_PROJECT, DbtProject

    if DbtProject.from_env().project_path == BUNDLED_PROJECT:
        with psycopg.connect(database_url) as conn:
            load_demo_data(conn)
    subprocess.run([sys.executable, "-m", "include", "dbt", "manifest"], check=True, cwd=PROJECT_ROOT)


def provision_roles(admin_url: str, plan: RolePlan = LOCAL_ROLES) -> tuple[str, str]:
    """``python -m include roles setup`` as the administrator; return (platform URL, reader URL).

    Passwords come from ``PLATFORM_ROLE_PASSWORD`` / ``READER_ROLE_PASSWORD`` when the server needs them.
    """
    from include.security.roles import plan_arguments

    subprocess.run(
        [sys.executable, "-m", "include", "roles", "setup", *plan_arguments(plan)],
        env={**os.environ, "DATABASE_URL": admin_url},
        check=True,
        cwd=PROJECT_ROOT,
    )
    platform = services.as_role(admin_url, plan.platform_role, os.environ.get(PASSWORD_ENV["platform"]))
    reader = services.as_role(admin_url, plan.reader_role, os.environ.get(PASSWORD_ENV["reader"]))
    return platform, reader


def _stack(executor: str, port: int) -> LocalStack:
    postgres = services.ensure_postgres()
    redis = services.ensure_redis()
    services.ensure_database(postgres.url)
    platform_url, reader_url = provision_roles(postgres.url)
    metadata_db_url = broker_url = None
    if executor == "celery":
        metadata = _with_path(postgres.url, f"/{CELERY_METADATA_DB}")
        services.ensure_database(metadata)
        metadata_db_url = metadata.replace("postgresql://", "postgresql+psycopg://", 1)
        broker_url = os.environ.get("CELERY_BROKER_URL") or _with_path(redis.url, f"/{CELERY_BROKER_DB}")
    return LocalStack(
        LOCAL_DIR,
        platform_url,
        redis.url,
        reader_url=reader_url,
        port=port,
        executor=executor,
        metadata_db_url=metadata_db_url,
        broker_url=broker_url,
    )


def up(executor: str, port: int) -> int:
    import psycopg

    from include.migrations import apply_migrations

    stack = _stack(executor, port)
    with psycopg.connect(stack.database_url) as conn:
        applied = apply_migrations(conn)
    log.info("platform schema up to date (%s newly applied)", applied or "none")
    prepare_dbt(stack.database_url)
    env = stack.up()
    stack.write_env_file(env)
    workers = [name for name in stack.components() if name.startswith("celery-worker-")]
    executor_note = f"CeleryExecutor, {len(workers)} worker queues" if workers else "LocalExecutor"
    print(
        f"\nAirflow is up ({executor_note}): {stack.url}\n"
        f"  login:     admin / {stack.admin_password()}\n"
        f"  warehouse: {services._redact(stack.database_url)} (the platform's role)\n"
        f"  reader:    {services._redact(stack.reader_url)} (alert, report and ad-hoc SQL)\n"
        f"  redis:     {stack.redis_url}\n"
        "  CLI:       source .local/env.sh && airflow dags list\n"
        "  stop:      make stop\n"
    )
    return 0


def down() -> int:
    stack = LocalStack(LOCAL_DIR, "", "")
    for name in stack.down():
        log.info("stopped %s", name)
    for name in services.stop_local_services():
        log.info("stopped project-local %s", name)
    return 0


def status() -> int:
    stack = LocalStack(LOCAL_DIR, "", "")
    names = sorted(p.stem for p in stack.run_dir.glob("*.pid")) if stack.run_dir.exists() else []
    for name in names or ["(nothing started)"]:
        pid = stack.running_pid(name) if names else None
        print(f"{name:26} {'running (pid ' + str(pid) + ')' if pid else 'stopped'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up_parser = sub.add_parser("up", help="start the local stack")
    up_parser.add_argument("--port", type=int, default=airflow_port())
    up_parser.add_argument("--executor", choices=["local", "celery"], default="local")
    sub.add_parser("down", help="stop everything `up` started")
    sub.add_parser("status", help="show the processes of the local stack")
    args = parser.parse_args(argv)
    if args.command == "up":
        return up(args.executor, args.port)
    if args.command == "down":
        return down()
    return status()


if __name__ == "__main__":
    sys.exit(main())
