"""The DAG-run helper isolates runs: one run's conf never leaks into the next run's params."""

from __future__ import annotations

from tests.support.dags import get_dag, run_dag


def _task_params() -> dict[str, dict]:
    return {task.task_id: dict(task.params) for task in get_dag("monitoring").tasks}


def test_conf_of_one_run_does_not_leak_into_the_params_of_the_next(monitored_services):
    before = _task_params()
    assert before["check_health"]["task_statistics_window_hours"] == 24
    run_dag("monitoring", conf={"task_statistics_window_hours": 48})
    assert _task_params() == before
