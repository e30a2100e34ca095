"""The local platform stack: Airflow components as background processes, with pid files.

One :class:`LocalStack` is one Airflow installation: a home, a run directory of pid files, a log
directory, an API port and an executor. ``make run`` uses LocalExecutor on SQLite; ``make
run-celery`` uses CeleryExecutor (Redis broker, PostgreSQL metadata DB and result backend) with one
Celery worker per category queue. Each process runs in its own process group so that stopping it
stops everything it spawned, and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from devstack.airflow_env import PROJECT_ROOT, airflow_environment, api_connection_environment, celery_environment
from include.settings import DEFAULT_AIRFLOW_PORT

log = logging.getLogger("devstack")

CORE_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
WORKER_LOG_PORT_BASE = 8793


def worker_concurrency() -> dict[str, int]:
    """Concurrency of each category's Celery worker: ``WORKER_CONCURRENCY_<CATEGORY>``, else its pool size."""
    from include.categories import CATEGORIES

    return {
        name: int(os.environ.get(f"WORKER_CONCURRENCY_{name.upper()}", category.pool_slots))
        for name, category in CATEGORIES.items()
    }


@dataclass
class LocalStack:
    local_dir: Path
    database_url: str
    redis_url: str
    port: int = DEFAULT_AIRFLOW_PORT
    executor: str = "local"  # or "celery"
    metadata_db_url: str | None = None
    broker_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    #: the reader role's URL (connection ``warehouse_reader``; ``database_url`` is the platform's role)
    reader_url: str = ""

    @property
    def airflow_home(self) -> Path:
        return self.local_dir / "airflow"

    @property
    def run_dir(self) -> Path:
        return self.local_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.local_dir / "logs"

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def environment(self) -> dict[str, str]:
        env = airflow_environment(
            self.airflow_home,
            database_url=self.database_url,
            redis_url=self.redis_url,
            api_port=self.port,
            metadata_db_url=self.metadata_db_url,
        )
        if self.executor == "celery":
            if not (self.metadata_db_url and self.broker_url):
                raise ValueError("the Celery stack needs a PostgreSQL metadata DB and a broker URL")
            env.update(celery_environment(self.broker_url, self.metadata_db_url))
        env.update(self.extra_env)
        return env

    def components(self) -> dict[str, list[str]]:
        """Process name -> airflow sub-command, for every process of this stack."""
        commands = {name: [name] for name in CORE_COMPONENTS}
        if self.executor == "celery":
            for queue, concurrency in worker_concurrency().items():
                commands[f"celery-worker-{queue}"] = [
                    "celery",
                    "worker",
                    "--queues",
                    queue,
                    "--concurrency",
                    str(concurrency),
                    "--celery-hostname",
                    f"{queue}@%h",
                    "--without-gossip",
                    "--without-mingle",
                ]
        return commands

    # ------------------------------------------------------------------ lifecycle

    def prepare(self) -> dict[str, str]:
        """Migrate the metadata DB and apply ``airflow_settings.yaml``; return the environment."""
        for directory in (self.run_dir, self.log_dir, self.airflow_home):
            directory.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        airflow = str(Path(sys.executable).parent / "airflow")
        subprocess.run([airflow, "db", "migrate"], env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL)
        overrides = [f"warehouse={self.database_url}"]
        if self.reader_url:
            overrides.append(f"warehouse_reader={self.reader_url}")
        subprocess.run(
            [sys.executable, "-m", "devstack.airflow_settings", *(f"--override={o}" for o in overrides)],
            env={**os.environ, **env},
            check=True,
            cwd=PROJECT_ROOT,
        )
        return env

    def start(self, env: dict[str, str]) -> None:
        airflow = str(Path(sys.executable).parent / "airflow")
        for index, (name, command) in enumerate(self.components().items()):
            if self.running_pid(name):
                log.info("%s already running", name)
                continue
            process_env = {**os.environ, **env}
            if name.startswith("celery-worker-"):
                process_env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(WORKER_LOG_PORT_BASE + index)
            with open(self.log_dir / f"{name}.log", "ab") as logfile:
                process = subprocess.Popen(
                    [airflow, *command],
                    env=process_env,
                    stdout=logfile,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    cwd=PROJECT_ROOT,
                )
            self._pid_file(name).write_text(str(process.pid))
            log.info("started %s (pid %s, log %s)", name, process.pid, self.log_dir / f"{name}.log")

    def up(self) -> dict[str, str]:
        """Prepare and start everything; return the environment (without the ``airflow_api`` secret)."""
        env = self.prepare()
        # The monitoring DAG reads task statistics through the api-server as admin: give the
        # processes that connection, but keep its password out of the returned (shareable) env.
        self.start({**env, **api_connection_environment(self.airflow_home, self.port)})
        self.wait_healthy()
        return env

    def wait_healthy(self, timeout: float = 240) -> dict:
        url = f"{self.url}/api/v2/monitor/health"
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    health = json.load(response)
                states = {
                    part: (health.get(part) or {}).get("status")
                    for part in ("metadatabase", "scheduler", "dag_processor", "triggerer")
                }
                if all(state == "healthy" for state in states.values()):
                    return health
                last = f"not all healthy yet: {states}"
            except (urllib.error.URLError, OSError, ValueError) as error:
                last = str(error)
            time.sleep(2)
        raise RuntimeError(
            f"Airflow did not become healthy on :{self.port} within {timeout:.0f}s ({last}); see {self.log_dir}"
        )

    def down(self, timeout: float = 20) -> list[str]:
        """Stop every process this stack started (by pid file); return their names.

        Each component first gets SIGTERM itself, so it can stop its own children (executor
        workers, running tasks) the way it means to; a second SIGTERM tells a scheduler not to wait
        for running tasks; then what is left of its process group gets SIGTERM, and after
        ``timeout`` seconds in all, SIGKILL.
        """
        names = [path.stem for path in self.run_dir.glob("*.pid")] if self.run_dir.exists() else []
        groups = {name: pid for name in names if (pid := self.running_pid(name))}
        deadline = time.monotonic() + timeout
        for step, signal_group in ((0.4, False), (0.7, False), (1.0, True)):
            for pid in groups.values():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGTERM) if signal_group else os.kill(pid, signal.SIGTERM)
            step_deadline = time.monotonic() + (deadline - time.monotonic()) * step
            while any(_group_alive(pid) for pid in groups.values()) and time.monotonic() < step_deadline:
                time.sleep(0.2)
        for name, pid in groups.items():
            if _group_alive(pid):
                log.warning("%s did not stop within %.0fs; killing it", name, timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        for name in names:
            self._pid_file(name).unlink(missing_ok=True)
        return sorted(groups)

    def running_pid(self, name: str) -> int | None:
        path = self._pid_file(name)
        if not path.exists():
            return None
        pid = int(path.read_text().strip())
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
            return None
        return pid

    def write_env_file(self, env: dict[str, str]) -> Path:
        """``.local/env.sh`` for the airflow CLI and ``python -m include``; no connection with a password."""
        path = self.local_dir / "env.sh"
        shareable = {k: v for k, v in env.items() if not k.startswith("AIRFLOW_CONN_") or not _has_password(v)}
        lines = [f"export {key}={shlex.quote(value)}" for key, value in sorted(shareable.items())]
        lines.append(f'export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"')
        path.write_text(
            "# Written by `make run`: source it to use the airflow CLI on the local stack.\n" + "\n".join(lines) + "\n"
        )
        return path

    def admin_password(self, timeout: float = 30) -> str:
        path = self.airflow_home / "simple_auth_manager_passwords.json.generated"
        deadline = time.monotonic() + timeout
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        if not path.exists():
            return f"(see {self.log_dir / 'api-server.log'})"
        return json.loads(path.read_text()).get("admin", "?")

    # ------------------------------------------------------------------ internals

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"


def _has_password(connection: str) -> bool:
    """Whether an ``AIRFLOW_CONN_*`` value (JSON, else a URI) carries a password."""
    try:
        return bool(json.loads(connection).get("password"))
    except (ValueError, AttributeError):
        return bool(urlsplit(connection).password)


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True
