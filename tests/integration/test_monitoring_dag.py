"""The monitoring DAG end to end against the real warehouse and Redis."""

from __future__ import annotations

from tests.support.dags import run_dag


def test_monitoring_dag_records_a_healthy_check_per_dependency(db):
    result = run_dag("monitoring")

    assert result.state == "success", result.task_states
    rows = db.execute(
        "SELECT check_name, status, latency_ms, dag_run_id FROM health_checks ORDER BY check_name"
    ).fetchall()
    assert [(name, status) for name, status, _, _ in rows] == [("redis", "ok"), ("warehouse", "ok")]
    assert all(latency >= 0 for _, _, latency, _ in rows)
    assert {run_id for *_, run_id in rows} == {result.run_id}
    versions = [v for (v,) in db.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions and versions[0] == 1
