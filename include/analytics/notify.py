"""Tell the analytics API service what was refreshed, so it can drop stale caches.

After the catalog and materialized-view jobs, one POST to the service's refresh endpoint (URL and
bearer token from the Airflow connection ``analytics_api``) through the ``external_api`` circuit
breaker. The body lists what was refreshed since the last notification the service accepted, so a
notification that failed (service down, breaker open) is not lost: the next one carries it. A
failed notification never fails the refresh; no connection configured means no notification (one
log line).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from include.analytics import refresh_log
from include.analytics.config import AnalyticsApiSettings
from include.sql import load_sql
from observability import metrics

log = logging.getLogger(__name__)

JOB = "analytics_api"
LOOKBACK_HOURS = 24


@dataclass(frozen=True)
class NotificationResult:
    status: str  # sent | failed | skipped
    reason: str | None = None
    url: str | None = None
    status_code: int | None = None
    views: int = 0
    catalog_refreshes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_payload(rows: list[tuple], *, until: datetime, dag_run_id: str | None) -> dict[str, Any]:
    """The notification body from ``select_pending.sql``'s rows."""
    since = rows[0][4] if rows else None
    views = sorted({target for job, target, *_ in rows if job == "materialized_views" and target})
    catalogs = [(finished, details) for job, _, finished, details, _ in rows if job == "catalog"]
    catalog = None
    if catalogs:
        finished, details = catalogs[-1]
        catalog = {
            "refreshed_at": finished.isoformat(),
            "refreshes": len(catalogs),
            "objects": details.get("total"),
            "added": sum(d.get("added", 0) for _, d in catalogs),
            "changed": sum(d.get("changed", 0) for _, d in catalogs),
            "dropped": sum(d.get("dropped", 0) for _, d in catalogs),
            "dropped_objects": sorted({o for _, d in catalogs for o in d.get("dropped_objects", [])}),
        }
    return {
        "event": "analytics.refresh",
        "source": "airflow",
        "dag_run_id": dag_run_id,
        "since": since.isoformat() if since else None,
        "until": until.isoformat(),
        "catalog": catalog,
        "materialized_views": views,
    }


def notify_analytics_api(
    hook: Any,
    settings: AnalyticsApiSettings,
    *,
    dag_run_id: str | None = None,
    conn_id: str | None = None,
) -> NotificationResult:
    """Send the pending refreshes to the analytics service; never raises for the service's failures."""
    import requests
    from airflow.sdk.exceptions import AirflowNotFoundException

    from hooks.circuit_breaker import CircuitOpenError
    from hooks.external_api import ExternalApiHook
    from hooks.failures import HttpDependencyError, HttpRejected

    conn_id = conn_id or ExternalApiHook.default_conn_name
    api = ExternalApiHook(conn_id, timeout=settings.timeout_seconds)
    try:
        url = _without_credentials(api.url_for(settings.endpoint))
    except AirflowNotFoundException:
        log.info("no Airflow connection %r is configured: the analytics service is not notified", conn_id)
        return _done(hook, NotificationResult(status="skipped", reason=f"no connection {conn_id!r}"), None, dag_run_id)

    with hook.transaction() as conn:
        until = conn.execute(load_sql("analytics_api/now.sql")).fetchone()[0]
        rows = conn.execute(
            load_sql("analytics_api/select_pending.sql"), {"until": until, "lookback_hours": LOOKBACK_HOURS}
        ).fetchall()
    if not rows:
        log.info("nothing was refreshed since the last notification: the analytics service is not notified")
        return NotificationResult(status="skipped", reason="nothing refreshed since the last notification", url=url)

    payload = build_payload(rows, until=until, dag_run_id=dag_run_id)
    key = hashlib.sha256(f"{payload['since']}|{payload['until']}".encode()).hexdigest()[:32]
    counts = {
        "views": len(payload["materialized_views"]),
        "catalog_refreshes": (payload["catalog"] or {}).get("refreshes", 0),
    }
    started = time.perf_counter()
    try:
        response = api.post(settings.endpoint, json=payload, headers={"Idempotency-Key": key})
    except CircuitOpenError as error:
        result = NotificationResult(status="failed", reason=str(error), url=url, **counts)
    except (HttpDependencyError, HttpRejected, requests.RequestException) as error:
        code = getattr(getattr(error, "response", None), "status_code", None) or getattr(error, "status_code", None)
        result = NotificationResult(
            status="failed", reason=f"{type(error).__name__}: {error}", url=url, status_code=code, **counts
        )
    else:
        result = NotificationResult(status="sent", url=url, status_code=response.status_code, **counts)
    if result.status == "sent":
        log.info("notified the analytics service at %s: %s", url, _describe(payload))
    else:
        log.warning(
            "could not notify the analytics service at %s (%s); the refreshes stay pending for the next "
            "notification. The refresh itself succeeded.",
            url,
            result.reason,
        )
    return _done(hook, result, payload, dag_run_id, (time.perf_counter() - started) * 1000)


def _without_credentials(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc, query=""))


def _describe(payload: dict[str, Any]) -> str:
    parts = []
    if payload["catalog"]:
        parts.append("catalog refreshed")
    if payload["materialized_views"]:
        parts.append(f"{len(payload['materialized_views'])} materialized views")
    return ", ".join(parts)


def _done(
    hook: Any,
    result: NotificationResult,
    payload: dict[str, Any] | None,
    dag_run_id: str | None,
    duration_ms: float = 0.0,
) -> NotificationResult:
    details = {k: v for k, v in result.as_dict().items() if k not in ("status", "reason") and v is not None}
    if payload is not None:
        details.update(since=payload["since"], until=payload["until"])
    with hook.transaction() as conn:
        refresh_log.record(
            conn,
            job=JOB,
            target=result.url,
            status={"sent": "success"}.get(result.status, result.status),
            dag_run_id=dag_run_id,
            details=details,
            error=result.reason,
            duration_ms=duration_ms,
        )
    metrics.incr("analytics_api.notifications", status=result.status)
    return result
