"""A real scheduler stack for tests and benchmarks (``make run``'s components) and its REST API.

:func:`scheduler_stack` starts a :class:`devstack.stack.LocalStack` (api-server, scheduler,
dag-processor, triggerer on LocalExecutor) on the test session's warehouse, with every DAG paused
at creation; :class:`Api` drives it through ``/api/v2`` (unpause, trigger, wait, read runs, task
instances and assets). Start one per module (or session): it takes about a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from tests.support.servers import free_port
from tests.support.waiting import wait_until

FINISHED = ("success", "failed")


class Api:
    """The stack's REST API as ``admin``."""

    def __init__(self, url: str, password: str) -> None:
        self.base = url
        self.url = f"{url}/api/v2"
        self.session = requests.Session()
        token = requests.post(f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=30)
        token.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def get(self, path: str, **params: Any) -> Any:
        response = self.session.get(f"{self.url}{path}", params=params, timeout=60)
        response.raise_for_status()
        return response.json()

    def parsed(self, dag_id: str) -> bool:
        return self.session.get(f"{self.url}/dags/{dag_id}", timeout=30).ok

    def unpause(self, dag_id: str) -> None:
        wait_until(lambda: self.parsed(dag_id), what=f"the dag-processor to parse {dag_id}", timeout=180, interval=1)
        response = self.session.patch(f"{self.url}/dags/{dag_id}", json={"is_paused": False}, timeout=60)
        response.raise_for_status()

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        body: dict[str, Any] = {"logical_date": None}
        if conf:
            body["conf"] = conf
        response = self.session.post(f"{self.url}/dags/{dag_id}/dagRuns", json=body, timeout=60)
        response.raise_for_status()
        return response.json()["dag_run_id"]

    def runs(self, dag_id: str, run_type: str | None = None) -> list[dict]:
        """The DAG's runs, oldest first (``run_type``: only those, e.g. ``asset_triggered``)."""
        params: dict[str, Any] = {"limit": 100, "order_by": "run_after"}
        if run_type:
            params["run_type"] = [run_type]
        return self.get(f"/dags/{dag_id}/dagRuns", **params)["dag_runs"]

    def wait(self, dag_id: str, run_id: str, timeout: float = 300) -> dict:
        return wait_until(
            lambda: (run := self.get(f"/dags/{dag_id}/dagRuns/{run_id}"))["state"] in FINISHED and run,
            what=f"{dag_id} run {run_id} to finish",
            timeout=timeout,
            interval=1,
        )

    def wait_for_run(self, dag_id: str, predicate, *, what: str, timeout: float = 180) -> dict:
        """The first finished run of ``dag_id`` for which ``predicate(run)`` holds."""

        def finished() -> dict | None:
            return next((r for r in self.runs(dag_id) if r["state"] in FINISHED and predicate(r)), None)

        return wait_until(finished, what=what, timeout=timeout, interval=1)

    def tasks(self, dag_id: str, run_id: str) -> dict[str, dict]:
        """Task instances of a run: ``task_id`` (``task_id[map_index]`` when mapped) -> instance."""
        found = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=200)["task_instances"]
        return {(t["task_id"] if t["map_index"] < 0 else f"{t['task_id']}[{t['map_index']}]"): t for t in found}

    def asset_events(self, **params: Any) -> list[dict]:
        return self.get("/assets/events", limit=200, order_by="timestamp", **params)["asset_events"]


@contextmanager
def scheduler_stack(root: Path, test_env: Any, extra_env: dict[str, str] | None = None) -> Iterator[tuple[Any, Api]]:
    """The stack under ``root`` on the session's warehouse (every DAG paused at creation); yields (stack, api)."""
    from devstack.airflow_env import openlineage_file_transport
    from devstack.stack import LocalStack

    env = {
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        # its OpenLineage events in its own home (not in the test session's, whose setting it inherits)
        **openlineage_file_transport(root / "airflow"),
        **(extra_env or {}),
    }
    stack = LocalStack(
        root, test_env.platform_url, test_env.redis_url, reader_url=test_env.reader_url, port=free_port(), extra_env=env
    )
    try:
        stack.up()
        yield stack, Api(stack.url, stack.admin_password())
    finally:
        stack.down()
