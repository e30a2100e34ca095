"""System metrics of the worker that runs the monitoring task, recorded in ``worker_metrics``.

The old worker's monitoring queue sampled CPU, memory, disk and load of its own machine; here the
machine is whichever worker runs the ``monitoring`` queue. Values also go out as gauges
(``platform.worker.*`` with the host name as label).
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

from include.sql import load_sql
from observability import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SystemSample:
    hostname: str
    cpu_percent: float
    cpu_count: int
    memory_percent: float
    memory_used_bytes: int
    memory_total_bytes: int
    disk_percent: float
    disk_used_bytes: int
    disk_total_bytes: int
    load_1m: float
    load_5m: float
    load_15m: float
    details: dict[str, Any] = field(default_factory=dict)


def sample_system(
    *, disk_path: str | None = None, cpu_interval: float = 0.5, hostname: str | None = None
) -> SystemSample:
    """Measure this machine now: CPU over ``cpu_interval`` seconds, memory, the disk of ``disk_path``, load.

    ``disk_path`` defaults to ``AIRFLOW_HOME`` (where logs and the local state live), else ``/``.
    """
    import psutil

    path = disk_path or os.environ.get("AIRFLOW_HOME") or "/"
    if not os.path.exists(path):
        path = "/"
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(path)
    load_1m, load_5m, load_15m = psutil.getloadavg()
    swap = psutil.swap_memory()
    return SystemSample(
        hostname=hostname or socket.gethostname(),
        cpu_percent=float(psutil.cpu_percent(interval=cpu_interval)),
        cpu_count=psutil.cpu_count() or 1,
        memory_percent=float(memory.percent),
        memory_used_bytes=int(memory.total - memory.available),
        memory_total_bytes=int(memory.total),
        disk_percent=float(disk.percent),
        disk_used_bytes=int(disk.used),
        disk_total_bytes=int(disk.total),
        load_1m=float(load_1m),
        load_5m=float(load_5m),
        load_15m=float(load_15m),
        details={
            "disk_path": path,
            "swap_percent": float(swap.percent),
            "process_count": len(psutil.pids()),
            "boot_time": psutil.boot_time(),
        },
    )


def record_sample(hook, sample: SystemSample) -> dict[str, Any]:
    """Insert ``sample`` into ``worker_metrics`` and emit it as gauges; return it as a dict."""
    row = asdict(sample)
    with hook.transaction() as conn:
        conn.execute(load_sql("monitoring/insert_worker_metrics.sql"), {**row, "details": json.dumps(sample.details)})
    metrics.gauge("worker.cpu_percent", sample.cpu_percent, host=sample.hostname)
    metrics.gauge("worker.memory_percent", sample.memory_percent, host=sample.hostname)
    metrics.gauge("worker.disk_percent", sample.disk_percent, host=sample.hostname)
    metrics.gauge("worker.load_1m", sample.load_1m, host=sample.hostname)
    log.info(
        "%s: cpu %.1f%%, memory %.1f%%, disk %.1f%%, load %.2f",
        sample.hostname,
        sample.cpu_percent,
        sample.memory_percent,
        sample.disk_percent,
        sample.load_1m,
    )
    return row


def collect_system_metrics() -> dict[str, Any]:
    """Sample this worker and record the sample."""
    from hooks.warehouse import WarehouseHook

    return record_sample(WarehouseHook(), sample_system())
