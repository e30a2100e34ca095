"""Task statistics per DAG and task over a recent window, from Airflow's REST API into ``task_statistics``.

Airflow 3 tasks may not read the metadata database, so the task instances come from the REST API
v2 (:class:`hooks.airflow_api.AirflowApiHook`). A window counts every task instance that finished
(success or failed) inside it: runs, successes, failures, success rate, median and 95th percentile
duration, and retries (attempts beyond the first). One row per DAG, task and window end; computing
the same window again (a retried task) replaces its rows.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from include.sql import load_sql

log = logging.getLogger(__name__)

FINISHED_STATES = ("success", "failed")


@dataclass(frozen=True)
class TaskStatistic:
    dag_id: str
    task_id: str
    window_start: datetime
    window_end: datetime
    runs: int
    successes: int
    failures: int
    success_rate: float | None
    p50_duration_s: float | None
    p95_duration_s: float | None
    retries: int


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear-interpolated percentile (PostgreSQL's ``percentile_cont``); ``None`` for no values."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"percentile fraction must be within [0, 1], got {fraction}")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower, upper = math.floor(position), math.ceil(position)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def summarise(
    task_instances: Iterable[Mapping[str, Any]], window_start: datetime, window_end: datetime
) -> list[TaskStatistic]:
    """Aggregate API task-instance records (``dag_id``, ``task_id``, ``state``, ``duration``, ``try_number``)."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for ti in task_instances:
        if ti.get("state") in FINISHED_STATES:
            groups[(ti["dag_id"], ti["task_id"])].append(ti)
    statistics = []
    for (dag_id, task_id), instances in sorted(groups.items()):
        successes = sum(1 for ti in instances if ti["state"] == "success")
        durations = [float(ti["duration"]) for ti in instances if ti.get("duration") is not None]
        statistics.append(
            TaskStatistic(
                dag_id=dag_id,
                task_id=task_id,
                window_start=window_start,
                window_end=window_end,
                runs=len(instances),
                successes=successes,
                failures=len(instances) - successes,
                success_rate=successes / len(instances),
                p50_duration_s=percentile(durations, 0.5),
                p95_duration_s=percentile(durations, 0.95),
                retries=sum(max(int(ti.get("try_number") or 1) - 1, 0) for ti in instances),
            )
        )
    return statistics


def fetch_finished_task_instances(api_hook, window_start: datetime, window_end: datetime) -> list[dict[str, Any]]:
    """Task instances that finished in ``[window_start, window_end)``, from the REST API."""
    params = {
        "end_date_gte": window_start.isoformat(),
        "end_date_lt": window_end.isoformat(),
        "state": list(FINISHED_STATES),
    }
    return list(api_hook.iter_task_instances(params))


def store(hook, statistics: Sequence[TaskStatistic]) -> None:
    """Upsert the rows of one window (same DAG, task and window end: replaced)."""
    if not statistics:
        return
    with hook.transaction() as conn, conn.cursor() as cur:
        cur.executemany(load_sql("monitoring/upsert_task_statistics.sql"), [asdict(s) for s in statistics])


def window_end_of(data_interval_end: datetime | None, run_after: datetime) -> datetime:
    """The run's data interval end; a run without one (triggered manually in Airflow 3) ends at ``run_after``."""
    return data_interval_end or run_after


def compute_task_statistics(window_end: datetime, window_hours: float) -> list[dict[str, Any]]:
    """Read the window ending at ``window_end`` from the REST API and store its statistics."""
    from hooks.airflow_api import AirflowApiHook
    from hooks.warehouse import WarehouseHook

    if window_hours <= 0:
        raise ValueError(f"task statistics window must be positive hours, got {window_hours}")
    window_start = window_end - timedelta(hours=window_hours)
    instances = fetch_finished_task_instances(AirflowApiHook(), window_start, window_end)
    statistics = summarise(instances, window_start, window_end)
    store(WarehouseHook(), statistics)
    log.info(
        "task statistics %s .. %s: %d task instances, %d tasks",
        window_start.isoformat(),
        window_end.isoformat(),
        len(instances),
        len(statistics),
    )
    return [
        {"dag_id": s.dag_id, "task_id": s.task_id, "runs": s.runs, "success_rate": s.success_rate} for s in statistics
    ]
