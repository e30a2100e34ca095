"""PostgreSQL and Redis for local runs and tests: the configured servers first, else project-local ones.

The configured URLs (``DATABASE_URL``, ``REDIS_URL``; defaults in ``include/settings.py``) are tried first. When
a server cannot be reached, a project-local one is started under ``.local/`` (ignored by git) on a
port of its own, and stopped again by whoever started it. Nothing outside ``.local/`` is touched.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from include.settings import LOCAL_POSTGRES_PORT, LOCAL_REDIS_PORT, database_url, redis_url

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_DIR = PROJECT_ROOT / ".local"


class ServiceError(RuntimeError):
    """A service could neither be reached nor started."""


@dataclass
class ServiceHandle:
    """A reachable service and whether this process started it (and so must stop it)."""

    name: str
    url: str
    started_here: bool
    stop_command: list[str] | None = None

    def stop(self) -> None:
        if self.started_here and self.stop_command:
            log.info("stopping project-local %s", self.name)
            subprocess.run(self.stop_command, check=False, capture_output=True, timeout=60)
            self.started_here = False


def _replace_db(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def as_role(url: str, role: str, password: str | None = None) -> str:
    """``url`` (same server and database) logging in as ``role``, with ``password`` if given."""
    from urllib.parse import quote

    parts = urlsplit(url)
    login = quote(role, safe="") + (f":{quote(password, safe='')}" if password else "")
    host = parts.hostname or "127.0.0.1"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return urlunsplit(parts._replace(netloc=f"{login}@{host}" + (f":{parts.port}" if parts.port else "")))


# ---------------------------------------------------------------- PostgreSQL


def postgres_reachable(url: str) -> bool:
    """True when the server of ``url`` accepts a connection (to its maintenance database)."""
    import psycopg

    try:
        with psycopg.connect(_replace_db(url, "postgres"), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` when it does not exist yet."""
    import psycopg
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/") or "postgres"
    with psycopg.connect(_replace_db(url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # created concurrently
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _postgres_bindir() -> Path:
    """Directory of initdb/pg_ctl: PATH, Debian's versioned dirs, else the pgserver wheel."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    try:
        import pgserver  # optional: ships PostgreSQL binaries in a wheel

        return Path(pgserver.__file__).parent / "pginstall" / "bin"
    except ImportError:
        pass
    raise ServiceError(
        "PostgreSQL is not reachable and no PostgreSQL binaries were found to start a local one: "
        "install PostgreSQL (apt-get install postgresql) or `pip install pgserver`, "
        "or set DATABASE_URL to a reachable server"
    )


def _as_postgres_user() -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise ServiceError("running as root needs a 'postgres' system user to start PostgreSQL") from None
    return ["runuser", "-u", "postgres", "--"]


def start_local_postgres() -> ServiceHandle:
    """Start (initialising on first use) the project-local cluster under ``.local/postgres``."""
    url = f"postgresql://postgres@127.0.0.1:{LOCAL_POSTGRES_PORT}/postgres"
    if postgres_reachable(url):
        return ServiceHandle("postgres", url, started_here=False)
    handle = start_postgres_cluster(LOCAL_DIR / "postgres", LOCAL_POSTGRES_PORT)
    log.info("started project-local PostgreSQL on 127.0.0.1:%s", LOCAL_POSTGRES_PORT)
    return handle


def start_postgres_cluster(base: Path, port: int, *settings: str) -> ServiceHandle:
    """Start a PostgreSQL cluster in ``base/data`` on 127.0.0.1:``port`` (``initdb`` on first use).

    ``settings`` are extra ``name=value`` server settings (e.g. ``shared_preload_libraries=...``).
    The returned handle stops the cluster.
    """
    bindir, prefix, data = _postgres_bindir(), _as_postgres_user(), base / "data"
    base.mkdir(parents=True, exist_ok=True)
    if prefix:
        shutil.chown(base, user="postgres")
    if not (data / "PG_VERSION").exists():
        log.info("initialising PostgreSQL in %s", data)
        initdb = [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
        ]
        subprocess.run([*prefix, *initdb], check=True, capture_output=True)
    options = " ".join(
        [f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off", *(f"-c {s}" for s in settings)]
    )
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*prefix, *pg_ctl, "-o", options, "-l", str(base / "server.log"), "-w", "-t", "60", "start"],
        check=True,
        capture_output=True,
    )
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    return ServiceHandle(
        "postgres", url, started_here=True, stop_command=[*prefix, *pg_ctl, "-m", "fast", "-w", "stop"]
    )


def _postgres_stop_command() -> list[str]:
    data = LOCAL_DIR / "postgres" / "data"
    return [*_as_postgres_user(), str(_postgres_bindir() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]


def ensure_postgres(configured_url: str | None = None) -> ServiceHandle:
    """A reachable PostgreSQL: the configured server, else the project-local one."""
    url = configured_url or database_url()
    return _ensure("postgres", url, postgres_reachable, start_local_postgres)


# ---------------------------------------------------------------- Redis


def redis_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def start_local_redis() -> ServiceHandle:
    """Start the project-local Redis under ``.local/redis`` (nothing persisted)."""
    url = f"redis://127.0.0.1:{LOCAL_REDIS_PORT}/0"
    if redis_reachable(url):
        return ServiceHandle("redis", url, started_here=False)
    server = shutil.which("redis-server")
    if not server:
        raise ServiceError(
            "Redis is not reachable and redis-server is not installed: install it "
            "(apt-get install redis-server) or set REDIS_URL to a reachable server"
        )
    base = LOCAL_DIR / "redis"
    base.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            server,
            "--port",
            str(LOCAL_REDIS_PORT),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
            "--dir",
            str(base),
            "--pidfile",
            str(base / "redis.pid"),
            "--logfile",
            str(base / "redis.log"),
        ],
        check=True,
        capture_output=True,
    )
    deadline = time.monotonic() + 20
    while not redis_reachable(url):
        if time.monotonic() > deadline:
            raise ServiceError(f"project-local Redis did not start; see {base / 'redis.log'}")
        time.sleep(0.1)
    log.info("started project-local Redis on 127.0.0.1:%s", LOCAL_REDIS_PORT)
    return ServiceHandle("redis", url, started_here=True, stop_command=_redis_stop_command())


def _redis_stop_command() -> list[str]:
    cli = shutil.which("redis-cli")
    if cli:
        return [cli, "-p", str(LOCAL_REDIS_PORT), "shutdown", "nosave"]
    return ["sh", "-c", f"kill $(cat {LOCAL_DIR / 'redis' / 'redis.pid'})"]


def ensure_redis(configured_url: str | None = None) -> ServiceHandle:
    """A reachable Redis: the configured server, else the project-local one."""
    url = configured_url or redis_url()
    return _ensure("redis", url, redis_reachable, start_local_redis)


def _ensure(
    name: str, url: str, reachable: Callable[[str], bool], start_local: Callable[[], ServiceHandle]
) -> ServiceHandle:
    """``url`` when its server answers; else the project-local server, same database path."""
    if reachable(url):
        return ServiceHandle(name, url, started_here=False)
    log.warning("%s at %s is not reachable; using a project-local server", name, _redact(url))
    handle = start_local()
    handle.url = urlunsplit(urlsplit(handle.url)._replace(path=urlsplit(url).path or "/"))
    return handle


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def stop_local_services() -> list[str]:
    """Stop the project-local PostgreSQL and Redis when they run; return what was stopped."""
    stopped = []
    if (LOCAL_DIR / "postgres" / "data" / "postmaster.pid").exists():
        ServiceHandle("postgres", "", True, _postgres_stop_command()).stop()
        stopped.append("postgres")
    if redis_reachable(f"redis://127.0.0.1:{LOCAL_REDIS_PORT}/0"):
        ServiceHandle("redis", "", True, _redis_stop_command()).stop()
        stopped.append("redis")
    return stopped
