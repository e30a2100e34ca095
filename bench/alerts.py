"""Alerts per second: batched evaluation vs one Airflow task per alert, measured in the same run.

Both designs run the real ``alerts`` DAG with ``dag.test()`` against a fresh warehouse database:
the batched design evaluates ``--alerts`` definitions (default 1,000) in mapped tasks of
``--batch-size`` alerts; the baseline evaluates ``--baseline-alerts`` of the same definitions with
``batch_size=1``, i.e. one Airflow task per alert (the design the DAG avoids). Throughput is
alerts evaluated per second of the evaluation phase (first evaluation task start to last end,
from the task instances), so both pay the same per-alert SQL and state writes and differ only in
the per-task overhead. ``dag.test()`` runs tasks one after another in-process, which is the
cheapest possible per-task overhead: a real executor (a process per task, queueing) makes the
baseline slower still, so the ratio here is a lower bound.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from bench.common import Target, finish, print_table

TARGET = Target(">=", 10)


def _create_alerts(database_url: str, count: int) -> list[str]:
    """``count`` alerts on a small events table; about one in ten fires."""
    import psycopg

    from include.alerts.definitions import validate_single
    from include.alerts.settings import AlertSettings
    from include.alerts.sync import save_definition

    settings = AlertSettings(minimum_interval=0)
    names = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_events (bucket int, amount numeric, created_at timestamptz)")
        conn.execute(
            "INSERT INTO bench_events SELECT g % 100, g, now() - g * interval '1 second' "
            "FROM generate_series(1, 20000) g"
        )
        conn.execute("ANALYZE bench_events")
        with conn.transaction():
            for i in range(count):
                name = f"bench_alert_{i:04d}"
                bucket = i % 100
                kind = i % 4
                if kind == 0:
                    alert = {"sql": f"SELECT count(*) FROM bench_events WHERE bucket = {bucket}", "condition": ">"}
                    alert["threshold"] = 150 if i % 10 else 100  # 200 rows per bucket: every tenth fires
                elif kind == 1:
                    alert = {"sql": f"SELECT sum(amount) FROM bench_events WHERE bucket = {bucket}", "condition": "<"}
                    alert["threshold"] = 0
                elif kind == 2:
                    sql = f"SELECT max(created_at) FROM bench_events WHERE bucket = {bucket} AND amount < 0"
                    alert = {"sql": sql, "condition": "is_not_null"}
                else:
                    alert = {
                        "sql": f"SELECT avg(amount) FROM bench_events WHERE bucket = {bucket}",
                        "condition": "change_pct",
                    }
                    alert["threshold"] = 10
                save_definition(conn, validate_single({"name": name, **alert}, "bench", settings), "table", None)
                names.append(name)
    return names


def _evaluation_seconds(run_id: str) -> tuple[float, int]:
    """Span of the evaluation tasks of one run (first start to last end) and how many there were."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        instances = (
            session.query(TaskInstance)
            .filter(TaskInstance.dag_id == "alerts", TaskInstance.run_id == run_id)
            .filter(TaskInstance.task_id == "evaluate_batch")
            .all()
        )
        if not instances or any(ti.state != "success" for ti in instances):
            raise SystemExit(f"evaluation tasks of {run_id} did not all succeed: {[ti.state for ti in instances]}")
        start = min(ti.start_date for ti in instances)
        end = max(ti.end_date for ti in instances)
        return (end - start).total_seconds(), len(instances)


def _evaluated(database_url: str, run_id: str) -> int:
    import psycopg

    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM analytics_alert_events WHERE dag_run_id = %s", [run_id]).fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--baseline-alerts", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()

    from tests.support import environment

    env = environment.set_up()  # fresh warehouse database, Redis index and Airflow home
    try:
        import os

        os.environ["ALERT_DEFINITIONS_DIR"] = tempfile.mkdtemp(prefix="bench-alerts-definitions-")
        from tests.support.dags import run_dag

        names = _create_alerts(env.database_url, args.alerts)
        rows = []
        results = {}
        for label, conf, expected in (
            (
                "one task per alert",
                {"only_alerts": names[: args.baseline_alerts], "batch_size": 1},
                args.baseline_alerts,
            ),
            # every key given: dag.test() runs keep the DAG object, and with it the last run's params
            (f"batches of {args.batch_size}", {"only_alerts": [], "batch_size": args.batch_size}, args.alerts),
        ):
            started = time.perf_counter()
            result = run_dag("alerts", conf=conf)
            wall = time.perf_counter() - started
            evaluated = _evaluated(env.database_url, result.run_id)
            if evaluated != expected:
                raise SystemExit(f"{label}: {evaluated} alerts evaluated, expected {expected}")
            seconds, tasks = _evaluation_seconds(result.run_id)
            results[label] = evaluated / seconds
            rows.append([label, evaluated, tasks, f"{seconds:.2f} s", f"{evaluated / seconds:.1f}", f"{wall:.1f} s"])
        print_table(["design", "alerts", "tasks", "evaluation phase", "alerts/s", "whole DAG run"], rows)
        baseline, batched = results.values()
        print(f"one task per alert: {baseline:.1f} alerts/s; batched: {batched:.1f} alerts/s")
        finish(
            "alerts",
            batched / baseline,
            TARGET,
            alerts=args.alerts,
            batched_alerts_per_s=round(batched, 1),
            baseline_alerts=args.baseline_alerts,
            baseline_alerts_per_s=round(baseline, 1),
            batch_size=args.batch_size,
        )
    finally:
        environment.tear_down(env)


if __name__ == "__main__":
    main()
