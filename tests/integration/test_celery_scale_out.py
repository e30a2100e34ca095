"""Scale out: the unchanged DAGs on CeleryExecutor, one worker group per category queue.

Starts the real Celery stack (scheduler, api-server, dag-processor, triggerer and five workers,
Redis broker, PostgreSQL metadata database and result backend), triggers every DAG through the
REST API, and checks from Airflow's and Celery's own records that each task ran on a worker of
its queue while no pool ever ran more tasks than its slots.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict

import psycopg
import pytest
import requests

from devstack.stack import LocalStack, worker_concurrency
from include.categories import CATEGORIES
from tests.support.dags import dag_bag
from tests.support.servers import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.celery

RUN_TIMEOUT = 600


@pytest.fixture
def celery_stack(test_env, scratch_database, tmp_path):
    stack = LocalStack(
        tmp_path,
        database_url=test_env.platform_url,
        reader_url=test_env.reader_url,
        redis_url=test_env.redis_url,
        port=free_port(),
        executor="celery",
        metadata_db_url=scratch_database.replace("postgresql://", "postgresql+psycopg://", 1),
        broker_url=test_env.redis_url,
    )
    try:
        stack.up()
        yield stack, stack.admin_password()
    finally:
        stack.down()


class PoolSampler(threading.Thread):
    """Samples the running task instances per pool from the metadata database."""

    def __init__(self, metadata_db: str) -> None:
        super().__init__(daemon=True)
        self.metadata_db = metadata_db
        self.peaks: Counter[str] = Counter()
        self.samples = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.metadata_db, autocommit=True) as conn:
            while not self.stop_event.is_set():
                rows = conn.execute(
                    "SELECT pool, sum(pool_slots) FROM task_instance WHERE state = 'running' GROUP BY pool"
                ).fetchall()
                for pool, running in rows:
                    self.peaks[pool] = max(self.peaks[pool], int(running))
                self.samples += 1
                time.sleep(0.2)


def test_every_dag_runs_on_its_queue_workers_within_pool_limits(celery_stack, scratch_database):
    stack, password = celery_stack
    token = requests.post(
        f"{stack.url}/auth/token", json={"username": "admin", "password": password}, timeout=10
    ).json()["access_token"]
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    dag_ids = sorted(dag_bag().dags)

    for dag_id in dag_ids:  # the dag-processor must have parsed every DAG
        wait_until(
            lambda dag_id=dag_id: api.get(f"{stack.url}/api/v2/dags/{dag_id}", timeout=10).ok,
            what=f"the dag-processor to parse {dag_id} (logs in {stack.log_dir})",
            timeout=180,
            interval=1,
        )

    sampler = PoolSampler(scratch_database)
    sampler.start()
    runs = {}
    for dag_id in dag_ids:
        api.patch(f"{stack.url}/api/v2/dags/{dag_id}", json={"is_paused": False}, timeout=10).raise_for_status()
        response = api.post(f"{stack.url}/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None}, timeout=10)
        assert response.status_code == 200, response.text
        runs[dag_id] = response.json()["dag_run_id"]

    def finished_runs() -> dict[str, str] | None:
        states = {
            dag_id: api.get(f"{stack.url}/api/v2/dags/{dag_id}/dagRuns/{run_id}", timeout=10).json()["state"]
            for dag_id, run_id in runs.items()
        }
        return states if all(state in ("success", "failed") for state in states.values()) else None

    states = wait_until(
        finished_runs, what=f"every DAG run to finish (logs in {stack.log_dir})", timeout=RUN_TIMEOUT, interval=2
    )
    sampler.stop_event.set()
    sampler.join(5)
    assert states == dict.fromkeys(runs, "success"), f"run states {states}; logs in {stack.log_dir}"

    with psycopg.connect(scratch_database) as conn:
        rows = conn.execute(
            """
            SELECT ti.dag_id, ti.task_id, ti.queue, ti.pool, meta.worker, meta.queue
            FROM task_instance ti
            JOIN celery_taskmeta meta ON meta.task_id = ti.external_executor_id
            WHERE ti.state = 'success'
            """
        ).fetchall()
    assert {dag_id for dag_id, *_ in rows} == set(dag_ids)
    ran_on = defaultdict(set)
    for dag_id, task_id, queue, pool, worker, celery_queue in rows:
        assert queue in CATEGORIES and pool == queue, f"{dag_id}.{task_id}: queue {queue}, pool {pool}"
        assert worker.startswith(f"{queue}@") and celery_queue == queue, (
            f"{dag_id}.{task_id} (queue {queue}) ran on worker {worker} from queue {celery_queue}"
        )
        ran_on[queue].add(worker)
    assert sampler.samples > 10
    for pool, peak in sampler.peaks.items():
        assert peak <= CATEGORIES[pool].pool_slots, f"pool {pool} ran {peak} tasks at once"
    assert worker_concurrency() == {name: c.pool_slots for name, c in CATEGORIES.items()}
