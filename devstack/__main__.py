"""Run the whole platform locally without Docker: ``python -m devstack up|down|status``.

``up`` reaches (or starts) PostgreSQL and Redis, applies the platform schema, loads the dbt demo
data and builds the dbt manifest, prepares the Airflow metadata database, applies
``airflow_settings.yaml`` and starts the Airflow components, each in its own process group with a
pid file under ``.local/run``. ``down`` stops exactly those processes and the project-local
services. Both are safe to repeat.
"""

from __future__ import annotations

import argparse
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
from pathlib import Path

from devstack import services
from devstack.airflow_env import PROJECT_ROOT, airflow_environment, dbt_profile_environment

LOCAL_DIR = PROJECT_ROOT / ".local"
RUN_DIR = LOCAL_DIR / "run"
LOG_DIR = LOCAL_DIR / "logs"
AIRFLOW_HOME = LOCAL_DIR / "airflow"
ENV_FILE = LOCAL_DIR / "env.sh"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")

log = logging.getLogger("devstack")


def _venv_bin() -> Path:
    return Path(sys.executable).parent


def _pid_file(name: str) -> Path:
    return RUN_DIR / f"{name}.pid"


def _running_pid(name: str) -> int | None:
    path = _pid_file(name)
    if not path.exists():
        return None
    pid = int(path.read_text().strip())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return None
    return pid


def _write_env_file(env: dict[str, str]) -> None:
    lines = [f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items())]
    lines.append(f'export PATH={shlex.quote(str(_venv_bin()))}:"$PATH"')
    ENV_FILE.write_text(
        "# Written by `make run`: source it to use the airflow CLI on the local stack.\n" + "\n".join(lines) + "\n"
    )


def _run_airflow(args: list[str], env: dict[str, str]) -> None:
    subprocess.run(
        [str(_venv_bin() / "airflow"), *args], env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL
    )


def _start_component(name: str, env: dict[str, str]) -> None:
    if _running_pid(name):
        log.info("%s already running", name)
        return
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOG_DIR / f"{name}.log", "ab") as logfile:
        process = subprocess.Popen(
            [str(_venv_bin() / "airflow"), name],
            env={**os.environ, **env},
            stdout=logfile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=PROJECT_ROOT,
        )
    _pid_file(name).write_text(str(process.pid))
    log.info("started %s (pid %s, log .local/logs/%s.log)", name, process.pid, name)


def _wait_healthy(port: int, timeout: float = 180) -> dict:
    url = f"http://localhost:{port}/api/v2/monitor/health"
    deadline = time.monotonic() + timeout
    last_error = ""
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
            last_error = f"not all healthy yet: {states}"
        except (urllib.error.URLError, OSError, ValueError) as error:
            last_error = str(error)
        time.sleep(2)
    raise RuntimeError(
        f"Airflow did not become healthy on :{port} within {timeout:.0f}s ({last_error}); see .local/logs/"
    )


def _admin_password() -> str:
    path = AIRFLOW_HOME / "simple_auth_manager_passwords.json.generated"
    deadline = time.monotonic() + 30
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    return json.loads(path.read_text()).get("admin", "?") if path.exists() else "(see .local/logs/api-server.log)"


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
    env = {**os.environ, **dbt_profile_environment(database_url)}
    subprocess.run([sys.executable, "-m", "include", "dbt", "manifest"], env=env, check=True, cwd=PROJECT_ROOT)


def up(port: int) -> int:
    from include.migrations import apply_migrations

    for directory in (RUN_DIR, LOG_DIR, AIRFLOW_HOME):
        directory.mkdir(parents=True, exist_ok=True)
    postgres = services.ensure_postgres()
    redis = services.ensure_redis()
    services.ensure_database(postgres.url)
    import psycopg

    with psycopg.connect(postgres.url) as conn:
        applied = apply_migrations(conn)
    log.info("platform schema up to date (%s newly applied)", applied or "none")

    env = airflow_environment(AIRFLOW_HOME, database_url=postgres.url, redis_url=redis.url, api_port=port)
    _write_env_file(env)
    prepare_dbt(postgres.url)
    _run_airflow(["db", "migrate"], env)
    subprocess.run(
        [sys.executable, "-m", "devstack.airflow_settings", "--override", f"warehouse={postgres.url}"],
        env={**os.environ, **env},
        check=True,
        cwd=PROJECT_ROOT,
    )
    for name in COMPONENTS:
        _start_component(name, env)
    _wait_healthy(port)
    print(
        f"\nAirflow is up: http://localhost:{port}\n"
        f"  login:     admin / {_admin_password()}\n"
        f"  warehouse: {services._redact(postgres.url)}\n"
        f"  redis:     {redis.url}\n"
        "  CLI:       source .local/env.sh && airflow dags list\n"
        "  stop:      make stop\n"
    )
    return 0


def _stop_process_group(name: str, timeout: float = 30) -> bool:
    pid = _running_pid(name)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.3)
    else:
        os.killpg(pid, signal.SIGKILL)
    _pid_file(name).unlink(missing_ok=True)
    return True


def down() -> int:
    names = [path.stem for path in RUN_DIR.glob("*.pid")] if RUN_DIR.exists() else []
    for name in names:
        if _stop_process_group(name):
            log.info("stopped %s", name)
    stopped = services.stop_local_services()
    for name in stopped:
        log.info("stopped project-local %s", name)
    return 0


def status() -> int:
    for name in COMPONENTS:
        pid = _running_pid(name)
        print(f"{name:14} {'running (pid ' + str(pid) + ')' if pid else 'stopped'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up_parser = sub.add_parser("up", help="start the local stack")
    up_parser.add_argument("--port", type=int, default=int(os.environ.get("AIRFLOW_PORT", "8080")))
    sub.add_parser("down", help="stop everything `up` started")
    sub.add_parser("status", help="show the Airflow components")
    args = parser.parse_args(argv)
    if args.command == "up":
        return up(args.port)
    if args.command == "down":
        return down()
    return status()


if __name__ == "__main__":
    sys.exit(main())
