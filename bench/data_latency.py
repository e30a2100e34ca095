"""From data change to notification: an alert on a dbt model, data-aware against its 5-minute clock.

Under the real scheduler (the ``make run`` stack: LocalExecutor, triggerer, its own home, port and
warehouse database with the platform's roles), on the bundled dbt project: each repetition loads
a new order into ``raw.orders`` and triggers ``transform``; dbt rebuilds ``marts.fct_orders``, the
model the alert ``bench_new_orders`` reads, and its condition turns true. Measured: from the
model's task success (``dbt.fct_orders_model_build``, from Airflow's task instance) to the
alert's notification row in the outbox (``analytics_alert_notifications.created_at``), over
``--repeat`` repetitions (at least 5).

The baseline, in the same run, is the clock path: the same alert evaluated by the alerts DAG's
5-minute schedule, whose expected wait after a change is half the interval plus the time an
evaluation run takes to write the notification (measured here with a manual run).

Also printed: how many alerts each data-driven run evaluated against the total defined (the other
``--other-alerts`` read tables that do not change: only the affected one should be evaluated).
Targets: median <= 30 s and p95 <= 60 s; the last line is the JSON result (``median_s``,
``p95_s``, ``ratio`` = median / the clock path's expected wait, ``evaluated_fraction``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path

from bench.common import Target, finish, print_table

CLOCK_INTERVAL_S = 300
TARGET_RATIO = Target("<=", 0.5)
TARGET_MEDIAN_S = Target("<=", 30.0)
TARGET_P95_S = Target("<=", 60.0)
ALERT = "bench_new_orders"
MODEL_TASK = "dbt.fct_orders_model_build"
AMOUNT = 4242.42
FIRST_ORDER = 900_000
RUN_TIMEOUT_S = 600


def _alerts_yaml(others: int) -> str:
    alerts = [
        {
            "name": ALERT,
            "sql": f"SELECT count(*) FROM marts.fct_orders WHERE amount = {AMOUNT}",
            "condition": ">",
            "threshold": 0,
            "schedule": "on_change",
            "rearm": "1s",  # every evaluation that finds it still firing writes a notification
            "channels": [{"type": "webhook", "endpoint": "/bench"}],
        }
    ]
    for i in range(others):
        alerts.append(
            {
                "name": f"bench_static_{i:02d}",
                "sql": f"SELECT count(*) FROM public.bench_static WHERE bucket = {i}",
                "condition": "<",
                "threshold": 0,
                "channels": [{"type": "webhook", "endpoint": "/bench"}],
            }
        )
    return json.dumps({"alerts": alerts}, indent=1)


def _sql(url: str, statement: str, params=None) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def _notified_after(admin_url: str, after: datetime) -> datetime | None:
    rows = _sql(
        admin_url,
        "SELECT min(n.created_at) FROM analytics_alert_notifications n JOIN analytics_alerts a ON a.id = n.alert_id "
        "WHERE a.name = %s AND n.created_at > %s",
        [ALERT, after],
    )
    return rows[0][0]


def _poll(what: str, check, timeout: float = RUN_TIMEOUT_S, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(interval)
    raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {what}")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _evaluated(admin_url: str, dag_run_id: str) -> int:
    return _sql(admin_url, "SELECT count(*) FROM analytics_alert_events WHERE dag_run_id = %s", [dag_run_id])[0][0]


def _alerts_run_of(api, transform_run: str) -> dict:
    """The finished asset-triggered alerts run that consumed the fct_orders event of ``transform_run``."""

    def consumed(run: dict) -> bool:
        events = api.get(f"/dags/alerts/dagRuns/{run['dag_run_id']}/upstreamAssetEvents")["asset_events"]
        return any(e["source_run_id"] == transform_run and e["uri"].endswith("/marts/fct_orders") for e in events)

    return api.wait_for_run(
        "alerts", lambda r: r["run_type"] == "asset_triggered" and consumed(r), what="the alerts run", timeout=300
    )


def _repetition(api, env, index: int) -> dict:
    order = FIRST_ORDER + index
    _sql(
        env.database_url,
        "INSERT INTO raw.orders (order_id, customer_id, ordered_at, status, amount) "
        "VALUES (%s, 1, now(), 'placed', %s)",
        [order, AMOUNT],
    )
    run_id = api.trigger("transform")
    task = _poll(
        f"{MODEL_TASK} of {run_id}",
        lambda: (t := api.tasks("transform", run_id).get(MODEL_TASK)) and t["state"] in ("success", "failed") and t,
        interval=0.5,
    )
    if task["state"] != "success":
        raise RuntimeError(f"{MODEL_TASK} of {run_id} ended {task['state']}")
    built = _parse_time(task["end_date"])
    notified = _poll("the notification row", lambda: _notified_after(env.database_url, built))
    api.wait("transform", run_id, timeout=RUN_TIMEOUT_S)
    alerts_run = _alerts_run_of(api, run_id)
    return {
        "latency_s": (notified - built).total_seconds(),
        "evaluated": _evaluated(env.database_url, alerts_run["dag_run_id"]),
        "transform_run": run_id,
    }


def _clock_evaluation_s(api, env) -> float:
    """How long an alerts run takes from its start to the notification (what the clock path adds to its wait)."""
    run_id = api.trigger("alerts", {"only_alerts": [ALERT]})
    run = api.wait("alerts", run_id)
    started = _parse_time(run["start_date"])
    notified = _poll("the clock run's notification", lambda: _notified_after(env.database_url, started))
    return (notified - started).total_seconds()


def _set_up(root: Path, others: int):
    from tests.support.environment import set_up

    env = set_up(root / "session-home")
    _sql(
        env.database_url,
        "CREATE TABLE public.bench_static AS SELECT g % 50 AS bucket FROM generate_series(1, 1000) g; "
        f"GRANT SELECT ON public.bench_static TO {env.role_plan.reader_role}",
    )
    definitions = root / "alerts"
    definitions.mkdir()
    (definitions / "bench.yaml").write_text(textwrap.dedent(_alerts_yaml(others)))
    return env, definitions


def _measure(args: argparse.Namespace, root: Path) -> tuple[list[dict], float, int]:
    from tests.support.environment import tear_down
    from tests.support.scheduler import scheduler_stack
    from tests.support.servers import RecordingHTTPServer

    env, definitions = _set_up(root, args.other_alerts)
    webhook = RecordingHTTPServer().start()
    extra = {
        "ALERT_DEFINITIONS_DIR": str(definitions),
        "AIRFLOW_CONN_ALERT_WEBHOOK": json.dumps({"conn_type": "http", "host": webhook.url}),
    }
    try:
        with scheduler_stack(root / "stack", env, extra) as (_, api):
            for dag_id in ("alerts", "transform"):
                api.unpause(dag_id)
            for dag_id in ("alerts", "transform"):  # their first clock runs, out of the way
                api.wait_for_run(dag_id, lambda r: True, what=f"the first {dag_id} run", timeout=RUN_TIMEOUT_S)
            reps = []
            for index in range(args.repeat):
                reps.append(_repetition(api, env, index))
                print(
                    f"repetition {index + 1}: {reps[-1]['latency_s']:.1f} s, {reps[-1]['evaluated']} alerts evaluated"
                )
            clock_eval = _clock_evaluation_s(api, env)  # now the alert fires: the clock run notifies too
    finally:
        webhook.stop()
        tear_down(env)
    return reps, clock_eval, args.other_alerts + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--other-alerts", type=int, default=19, help="alerts on tables that do not change")
    args = parser.parse_args()
    if args.repeat < 5:
        parser.error("--repeat must be at least 5")
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench-data-latency-") as tmp:
        reps, clock_eval, total = _measure(args, Path(tmp))
    latencies = sorted(r["latency_s"] for r in reps)
    median = statistics.median(latencies)
    p95 = statistics.quantiles(latencies, n=20, method="inclusive")[18] if len(latencies) > 1 else latencies[0]
    expected_clock = CLOCK_INTERVAL_S / 2 + clock_eval
    evaluated_fraction = max(r["evaluated"] for r in reps) / total
    print_table(
        ["path", "median", "p95", "alerts evaluated per run"],
        [
            [
                "data-aware (asset events)",
                f"{median:.1f} s",
                f"{p95:.1f} s",
                f"{max(r['evaluated'] for r in reps)} of {total}",
            ],
            ["clock (*/5, expected wait)", f"{expected_clock:.1f} s", "-", f"every due alert ({total})"],
        ],
    )
    print(f"machine load: {load}")
    finish(
        "data_latency",
        median / expected_clock,
        TARGET_RATIO,
        checks={"median_s": (median, TARGET_MEDIAN_S), "p95_s": (p95, TARGET_P95_S)},
        latencies_s=[round(v, 2) for v in latencies],
        clock_expected_wait_s=round(expected_clock, 1),
        clock_evaluation_s=round(clock_eval, 1),
        evaluated_fraction=round(evaluated_fraction, 4),
        alerts_defined=total,
        machine_load=load,
    )


if __name__ == "__main__":
    main()
