"""Health checks of the platform's dependencies, recorded in ``health_checks``.

Each check measures reachability and latency and never raises: a failing check is a row with
``status = 'failed'`` and a metric, and the other checks still run. The task that runs them fails
afterwards, naming every failed check, so the usual failure alerts fire. It fails without a retry:
a retry would only measure again, and the next scheduled run (five minutes later) does that.

Checked: the warehouse (``SELECT 1`` through its hook), Redis (``PING``), the SMTP server (connect,
STARTTLS and login as the delivery layer's SMTP hook does them) and the Slack and webhook endpoints (an
HTTP ``GET`` of the endpoint's origin: any answer below 500 means reachable; nothing is posted).
A notification channel whose Airflow connection is not defined is skipped and logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from include.sql import load_sql
from observability import metrics

log = logging.getLogger(__name__)

#: Seconds an endpoint probe may take before the check fails.
PROBE_TIMEOUT = 5.0
#: Breaker states as a gauge value (``platform_breaker_state``).
BREAKER_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}


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


def check_redis() -> CheckResult:
    """``PING`` the Redis that holds the circuit-breaker state, through the breakers' own connection."""
    from hooks.circuit_breaker import REDIS_CONN_ID, BreakerStore

    store = BreakerStore(REDIS_CONN_ID)
    return timed_check("redis", REDIS_CONN_ID, lambda: store.client.ping())


def check_smtp(conn_id: str) -> CheckResult:
    """Connect to the SMTP server of ``conn_id`` (STARTTLS and login as configured), then ``NOOP``; nothing is sent.

    Through the delivery layer's SMTP hook; the target is the mail server's breaker target.
    """
    from delivery.email import check_server, server_target

    return timed_check("smtp", server_target(conn_id), lambda: check_server(conn_id))


def endpoint_origin(conn) -> str:
    """``scheme://host[:port]`` of an HTTP or Slack connection, without any path, token or password.

    Follows the Slack provider's rules: a full URL in the password (webhook URL) or the host, else
    ``<schema or https>://<host>``; Slack connections without a host use Slack's public hosts.
    """
    candidates = [conn.password] if conn.password and "://" in conn.password else []
    host = (conn.host or "").strip()
    if host:
        scheme = conn.schema if conn.schema in ("http", "https") else "https"
        candidates.append(host if "://" in host else f"{scheme}://{host}")
    elif conn.conn_type == "slackwebhook":
        candidates.append("https://hooks.slack.com")
    elif conn.conn_type == "slack":
        candidates.append((conn.extra_dejson or {}).get("base_url") or "https://slack.com")
    if not candidates:
        raise ValueError(f"connection {conn.conn_id!r} has no host to check")
    parts = urlsplit(candidates[0])
    port = parts.port or (conn.port if "://" not in host else None)
    if not parts.hostname:
        raise ValueError(f"connection {conn.conn_id!r}: cannot tell the endpoint's host from its URL")
    return f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port else "")


def check_http_endpoint(check_name: str, conn_id: str, timeout: float = PROBE_TIMEOUT) -> CheckResult:
    """``GET`` the origin of the endpoint of ``conn_id``; an answer below HTTP 500 means reachable."""
    import requests
    from airflow.sdk import BaseHook

    origin = endpoint_origin(BaseHook.get_connection(conn_id))

    def probe() -> None:
        response = requests.get(origin + "/", timeout=timeout, allow_redirects=False, stream=True)
        response.close()
        if response.status_code >= 500:
            raise RuntimeError(f"{origin} answered HTTP {response.status_code}")

    return timed_check(check_name, origin, probe)


def _connection_defined(conn_id: str) -> bool:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return False
    return True


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


def emit_breaker_states() -> int:
    """Gauge ``breaker.state`` (0 closed, 1 half-open, 2 open) for every breaker and target in Redis."""
    from hooks.circuit_breaker import all_statuses

    try:
        statuses = all_statuses()
    except Exception as error:  # Redis down: the redis check already reports it
        log.warning("could not read circuit breaker states: %s", error)
        return 0
    for status in statuses:
        value = BREAKER_STATE_VALUES.get(status.state, BREAKER_STATE_VALUES["open"])
        metrics.gauge("breaker.state", value, breaker=status.breaker, target=status.target)
    return len(statuses)


def run_health_checks(dag_run_id: str | None = None) -> list[dict]:
    """Check every dependency, record the results, and fail (without retry) naming the failed checks."""
    from airflow.sdk.exceptions import AirflowFailException

    from hooks.warehouse import WarehouseHook
    from include.settings import SLACK_CONN_ID, SMTP_CONN_ID, WEBHOOK_CONN_ID

    hook = WarehouseHook()
    results = [check_warehouse(hook), check_redis()]
    channels: list[tuple[str, str, Callable[[], CheckResult]]] = [
        ("smtp", SMTP_CONN_ID, lambda: check_smtp(SMTP_CONN_ID)),
        ("slack", SLACK_CONN_ID, lambda: check_http_endpoint("slack", SLACK_CONN_ID)),
        ("webhook", WEBHOOK_CONN_ID, lambda: check_http_endpoint("webhook", WEBHOOK_CONN_ID)),
    ]
    for name, conn_id, check in channels:
        if not _connection_defined(conn_id):
            log.info("health check %s skipped: connection %r is not defined", name, conn_id)
            continue
        try:
            results.append(check())
        except Exception as error:  # a connection that cannot even be read is a failed check
            results.append(CheckResult(name, conn_id, "failed", 0.0, f"{type(error).__name__}: {error}"[:1000]))
    record_results(hook, results, dag_run_id)
    emit_breaker_states()
    failed = [r for r in results if not r.ok]
    if failed:
        raise AirflowFailException(
            "health checks failed: " + "; ".join(f"{r.check_name} ({r.target}): {r.detail}" for r in failed)
        )
    log.info("all %d health checks passed: %s", len(results), ", ".join(r.check_name for r in results))
    return [asdict(r) for r in results]
