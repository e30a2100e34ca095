"""One test session's Airflow home and, for the tests that need them, its real services.

:func:`isolate_airflow` runs in ``pytest_configure`` of ``tests/conftest.py`` (before anything
imports Airflow) for every session: a temporary ``AIRFLOW_HOME`` and the project's Airflow
settings, and nothing is connected to. :func:`set_up` runs only when a test needs the services
(the session fixture of ``tests/integration/conftest.py``; ``bench/alerts.py``): a fresh PostgreSQL
database (created, migrated, loaded with the dbt demo source rows, then dropped), the platform's
role and the reader role provisioned like ``make run`` does it but with names of this session's
own (roles are cluster-wide; dropped at the end), a Redis database index claimed for the session,
and the SQLite metadata DB of the Airflow home migrated.

The ``warehouse`` connection is the non-superuser platform role and ``warehouse_reader`` the
reader, as in ``make run``; ``database_url`` (the fixtures' set-up and inspection) is the
administrator.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from devstack import services
from devstack.airflow_env import PROJECT_ROOT, airflow_environment
from include import settings

_LOCK_TTL = 4 * 3600
#: Schemas of the session database: the platform owns the dbt targets and the demo source data;
#: the reader may read them and ``public``, where the fixtures create their data tables.
OWN_SCHEMAS = ("raw", "staging", "marts")
GRANT_SCHEMAS = ("public", *OWN_SCHEMAS)


@dataclass
class TestEnvironment:
    #: the session database as the administrator (fixtures: set-up and inspection)
    database_url: str
    admin_database_url: str
    redis_url: str
    redis_db: int
    airflow_home: Path
    handles: list[services.ServiceHandle] = field(default_factory=list)
    #: the session database as the platform's role (connection ``warehouse``) and as the reader
    platform_url: str = ""
    reader_url: str = ""
    roles: tuple[str, ...] = ()
    #: the session's roles as ``python -m include roles setup`` provisions them
    role_plan: Any = None

    @property
    def database_name(self) -> str:
        return urlsplit(self.database_url).path.lstrip("/")


def _with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _claim_redis_db(base_url: str) -> int:
    """Claim a Redis database index (1-15) no other running test session holds."""
    import redis

    control = redis.Redis.from_url(_redis_url_with_db(base_url, 0))
    for index in range(1, 16):
        if control.set(f"platform-tests:db:{index}", os.getpid(), nx=True, ex=_LOCK_TTL):
            return index
    raise RuntimeError("every Redis database index 1-15 is claimed by another test session")


def _redis_url_with_db(url: str, index: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{index}"))


def isolate_airflow(home: Path | None = None, *, database_url: str = "", redis_url: str = "") -> Path:
    """Point this process at a throw-away ``AIRFLOW_HOME`` with the project's Airflow settings.

    Call it before Airflow is imported. It connects to nothing: without URLs the warehouse and
    Redis are the configured ones (``DATABASE_URL``, ``REDIS_URL``), until :func:`set_up` points
    them at the session's own.
    """
    home = home or Path(tempfile.mkdtemp(prefix="airflow-test-home-"))
    database_url = database_url or settings.database_url()
    redis_url = redis_url or settings.redis_url()
    os.environ.update(airflow_environment(home, database_url=database_url, redis_url=redis_url))
    os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
    return home


def set_up(home: Path | None = None) -> TestEnvironment:
    """The session's warehouse database and Redis index, and the Airflow home ``home`` (or a new one) migrated."""
    import psycopg
    from psycopg import sql

    postgres = services.ensure_postgres()
    redis_handle = services.ensure_redis()
    name = f"analytics_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin_url = _with_db(postgres.url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database_url = _with_db(postgres.url, name)
    redis_db = _claim_redis_db(redis_handle.url)
    redis_url = _redis_url_with_db(redis_handle.url, redis_db)
    home = home or Path(tempfile.mkdtemp(prefix="airflow-test-home-"))
    env = TestEnvironment(database_url, admin_url, redis_url, redis_db, home, [postgres, redis_handle])
    try:
        _prepare(env, suffix=name.removeprefix("analytics_test_"))
    except BaseException:
        tear_down(env)
        raise
    return env


def _prepare(env: TestEnvironment, suffix: str) -> None:
    """Point this process at the session's services, provision the roles and prepare both databases."""
    import psycopg

    from include.security.roles import RolePlan, set_up_roles

    plan = RolePlan(
        platform_role=f"analytics_platform_{suffix}",
        reader_role=f"analytics_reader_{suffix}",
        grant_schemas=GRANT_SCHEMAS,
        own_schemas=OWN_SCHEMAS,
        # the fixtures' data tables become readable; the platform's own tables never do
        creators=(urlsplit(env.database_url).username or "postgres",),
    )
    env.roles, env.role_plan = (plan.reader_role, plan.platform_role), plan
    env.platform_url = services.as_role(env.database_url, plan.platform_role)
    env.reader_url = services.as_role(env.database_url, plan.reader_role)
    isolate_airflow(env.airflow_home, database_url=env.platform_url, redis_url=env.redis_url)
    os.environ["AIRFLOW_CONN_WAREHOUSE"] = env.platform_url
    os.environ["AIRFLOW_CONN_WAREHOUSE_READER"] = env.reader_url
    with psycopg.connect(env.database_url) as conn:
        set_up_roles(conn, plan, passwords={})

    from include.migrations import apply_migrations
    from include.transform.demo_data import load_demo_data

    with psycopg.connect(env.platform_url) as conn:
        apply_migrations(conn)
        load_demo_data(conn)  # the bundled dbt project's source rows, as `make run` loads them
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    subprocess.run(
        [sys.executable, "-m", "devstack.airflow_settings"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        cwd=PROJECT_ROOT,
    )


def grant_schema(env: TestEnvironment, conn, schema: str, *, platform_owns: bool = False) -> None:
    """``roles setup --grant-schema SCHEMA`` (and ``--own-schema`` when the platform refreshes what is there)."""
    from dataclasses import replace

    from include.security.roles import set_up_roles

    own = (schema,) if platform_owns else ()
    set_up_roles(conn, replace(env.role_plan, grant_schemas=(schema,), own_schemas=own), passwords={})


@contextmanager
def scratch_database(env: TestEnvironment, prefix: str = "scratch") -> Iterator[str]:
    """Create an empty database on the session's server; drop it on exit."""
    import psycopg
    from psycopg import sql

    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(env.admin_database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_db(env.admin_database_url, name)
    finally:
        with psycopg.connect(env.admin_database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def tear_down(env: TestEnvironment) -> None:
    import psycopg
    import redis
    from psycopg import sql

    try:
        with psycopg.connect(env.admin_database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(env.database_name)))
            if env.roles:
                from include.security.roles import drop_roles

                drop_roles(conn, env.roles)
    finally:
        client = redis.Redis.from_url(env.redis_url)
        client.flushdb()
        redis.Redis.from_url(_redis_url_with_db(env.redis_url, 0)).delete(f"platform-tests:db:{env.redis_db}")
        shutil.rmtree(env.airflow_home, ignore_errors=True)
        for handle in env.handles:
            handle.stop()
