"""A real Airflow api-server for tests that need the REST API or the UI (started once per session)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import requests

from tests.support.servers import free_port
from tests.support.waiting import wait_until


class AirflowApiServer:
    """``airflow api-server`` on a free port, sharing the test session's metadata database.

    Login: user ``admin`` with :attr:`password` (SimpleAuthManager). :meth:`token` returns a JWT
    for ``Authorization: Bearer ...`` calls to ``/api/v2``.
    """

    def __init__(self, airflow_home: Path) -> None:
        self.port = free_port()
        self.password = secrets.token_urlsafe(12)
        self.airflow_home = airflow_home
        self.log_path = airflow_home / f"api-server-{self.port}.log"
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> AirflowApiServer:
        passwords = self.airflow_home / "simple_auth_manager_passwords.json.generated"
        passwords.write_text(json.dumps({"admin": self.password}))
        env = {
            **os.environ,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        }
        airflow = str(Path(sys.executable).parent / "airflow")
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [airflow, "api-server", "--port", str(self.port), "--host", "127.0.0.1"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def healthy() -> bool:
            if self._process.poll() is not None:
                raise RuntimeError(f"api-server exited; see {self.log_path}:\n{self.log_path.read_text()[-3000:]}")
            return requests.get(f"{self.url}/api/v2/monitor/health", timeout=2).status_code == 200

        try:
            wait_until(
                healthy,
                what=f"the api-server (log {self.log_path})",
                timeout=timeout,
                interval=0.5,
                ignore=(requests.RequestException,),
            )
        except TimeoutError:
            self.stop()
            raise
        return self

    def token(self, username: str = "admin", password: str | None = None) -> str:
        response = requests.post(
            f"{self.url}/auth/token",
            json={"username": username, "password": password or self.password},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            os.killpg(self._process.pid, 15)
            try:
                self._process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, 9)
        self._process = None
