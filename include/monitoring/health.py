"""Health checks of the platform's dependencies, recorded in ``health_checks``.

Each check measures reachability and latency and never raises: a failing check is a row with
``status = 'failed'`` and a metric, and the other checks still run. The task that runs them fails
afterwards, naming every failed check, so the usual failure alerts fire.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from include import metrics
from include.sql import load_sql

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    check_name: str
    target: str
    status: str  # "ok" | "failed"
    latency_ms: float
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class HealthCheckFailed(RuntimeError):
    """One or more checks failed (they are recorded before this is raised)."""


def timed_check(check_name: str, target: str, probe: Callable[[], object]) -> CheckResult:
    """Run ``probe``; its exception, if any, becomes a failed result with the error as detail."""
    started = time.perf_counter()
    try:
        probe()
    except Exception as error:
        latency = (time.perf_counter() - started) * 1000
        log.warning("health check %s (%s) failed: %s", check_name, target, error)
        return CheckResult(check_name, target, "failed", latency, f"{type(error).__name__}: {error}"[:1000])
    return CheckResult(check_name, target, "ok", (time.perf_counter() - started) * 1000)


def check_warehouse(hook) -> CheckResult:
    """``SELECT 1`` on the warehouse through its hook (and so through the database breaker)."""
    return timed_check("warehouse", hook.get_conn_id(), lambda: hook.get_first(load_sql("monitoring/select_one.sql")))


def check_redis(url: str) -> CheckResult:
    """``PING`` the Redis that holds the circuit-breaker state."""
    import redis

    from hooks.circuit_breaker import _redact

    def probe() -> None:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        finally:
            client.close()

    return timed_check("redis", _redact(url), probe)


def record_results(hook, results: Iterable[CheckResult], dag_run_id: str | None) -> None:
    """Insert one ``health_checks`` row per result and emit the status and latency metrics."""
    results = list(results)
    with hook.transaction() as conn, conn.cursor() as cur:
        cur.executemany(
            load_sql("monitoring/insert_health_check.sql"),
            [{**asdict(r), "dag_run_id": dag_run_id} for r in results],
        )
    for result in results:
        metrics.gauge("health.status", 1 if result.ok else 0, check=result.check_name)
        metrics.timing("health.latency", result.latency_ms, check=result.check_name)


def run_health_checks(dag_run_id: str | None = None) -> list[dict]:
    """Check every dependency, record the results, and fail naming the failed checks."""
    from hooks.warehouse import WarehouseHook
    from include.settings import redis_url

    hook = WarehouseHook()
    results = [check_warehouse(hook), check_redis(redis_url())]
    record_results(hook, results, dag_run_id)
    failed = [r for r in results if not r.ok]
    if failed:
        raise HealthCheckFailed(
            "health checks failed: " + "; ".join(f"{r.check_name} ({r.target}): {r.detail}" for r in failed)
        )
    log.info("all %d health checks passed", len(results))
    return [asdict(r) for r in results]
