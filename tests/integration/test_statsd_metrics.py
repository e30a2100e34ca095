"""Real StatsD packets of a DAG run, Airflow's and the platform's, through monitoring/statsd_mapping.yml.

The monitoring DAG runs with ``dag.test()`` in a subprocess whose ``[metrics]`` settings point at a
UDP listener of this test (Airflow reads them when a process creates its stats client, so they
must be in place before Airflow starts). The run exercises success and failure paths: the SMTP
server is unreachable (its check and the run fail) and one circuit breaker is open.
Every captured name must map, by statsd_exporter's rules, to the series its source prescribes
(Airflow's metric registry, the platform's metric calls in the code): no platform metric may fall
through unmapped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from devstack.airflow_env import PROJECT_ROOT, STATSD_ALLOW_LIST
from tests.support.metric_expectations import Expected, allowed, identify_airflow, identify_platform
from tests.support.project_metrics import scan_project
from tests.support.servers import free_port
from tests.support.statsd_exporter import PacketCapture, StatsdMapping

# dag.test() runs the scheduler's DagRun bookkeeping (run duration, dependency checks) in its own
# process; in a deployment the scheduler initialises core stats for it, so the runner does too.
RUNNER = """
from airflow.configuration import conf
from airflow.observability import stats
from airflow.observability.metrics import stats_utils

stats.initialize(
    factory=stats_utils.get_stats_factory(), export_legacy_names=conf.getboolean("metrics", "legacy_names_on")
)
from tests.support.dags import run_dag

result = run_dag("monitoring")
print("RESULT", result.state, ",".join(result.failed_tasks()))
"""


@pytest.fixture
def open_breaker(redis_client):
    from hooks.circuit_breaker import BreakerConfig, CircuitBreaker

    breaker = CircuitBreaker("external_api", "hooks.example.com", config=BreakerConfig(1, 300))
    with pytest.raises(ConnectionError), breaker.guard():
        raise ConnectionError("refused")
    assert breaker.status().state == "open"
    return breaker


def test_every_captured_metric_maps_to_its_prometheus_series(monitored_services, monkeypatch, open_breaker):
    smtp = {"conn_type": "smtp", "host": "127.0.0.1", "port": free_port(), "extra": {"disable_ssl": True}}
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(smtp))
    mapping = StatsdMapping.load(PROJECT_ROOT / "monitoring" / "statsd_mapping.yml")
    catalog = scan_project()

    with PacketCapture() as listener:
        env = {
            **os.environ,
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(listener.port),
            "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
            "AIRFLOW__METRICS__METRICS_ALLOW_LIST": STATSD_ALLOW_LIST,
        }
        run = subprocess.run(
            [sys.executable, "-c", RUNNER], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=240
        )
        assert run.returncode == 0, run.stderr[-4000:]
    assert "RESULT failed check_health" in run.stdout, run.stdout[-2000:] + run.stderr[-4000:]

    series = {}
    problems = []
    for packet in {(p.name, p.metric_type): p for p in listener.packets}.values():
        assert packet.name.startswith("airflow."), packet
        assert allowed(packet.name.removeprefix("airflow."), STATSD_ALLOW_LIST), f"{packet.name} was not allowed"
        if packet.name.startswith("airflow.platform."):
            found = identify_platform(packet.name, catalog)
            source = "no metrics.incr/gauge/timing call in the code emits it"
        else:
            found = identify_airflow(packet.name.removeprefix("airflow."))
            source = "not in Airflow's metric registry"
        if found is None:
            problems.append(f"{packet.name}: {source}")
            continue
        mapped = mapping.map(packet.name, packet.metric_type)
        outcome = Expected(mapped.action, mapped.name, mapped.labels)
        if outcome != found[1]:
            problems.append(f"{packet.name} ({packet.metric_type}): mapped to {outcome}, expected {found[1]}")
        if mapped.action == "map":
            series[(mapped.name, tuple(sorted(mapped.labels.items())))] = packet.value
    assert problems == []

    def value(name, **labels):
        return series.get((name, tuple(sorted(labels.items()))))

    # Airflow's own: task finish by state, task duration, DAG run duration by state, operator outcomes.
    assert value("airflow_ti_finish", dag_id="monitoring", task_id="check_health", state="failed") == "1"
    assert value("airflow_ti_finish", dag_id="monitoring", task_id="collect_system_metrics", state="success") == "1"
    assert value("airflow_task_duration", dag_id="monitoring", task_id="compute_task_statistics") is not None
    assert value("airflow_dagrun_duration", state="failed", dag_id="monitoring") is not None
    assert value("airflow_operator_successes", operator="_PythonDecoratedOperator") is not None
    # Airflow 3.3.2 counts ti_failures / operator_failures only for failures that may retry, not for
    # AirflowFailException: failure panels use airflow_ti_finish{state="failed"}, which covers both.
    assert value("airflow_ti_successes") is not None
    # The platform's: health status per check (the failed one is 0), breaker states, worker, retention.
    assert value("platform_health_status", check="smtp") == "0"
    assert value("platform_health_status", check="warehouse") == "1"
    assert value("platform_health_latency", check="webhook") is not None
    assert value("platform_breaker_state", breaker="external_api", target="hooks_example_com") == "2"
    assert value("platform_retention_deleted", table="health_checks") is not None
    assert {name for name, _ in series if name.startswith("platform_worker_")} == {
        "platform_worker_cpu_percent",
        "platform_worker_memory_percent",
        "platform_worker_disk_percent",
        "platform_worker_load_1m",
    }
