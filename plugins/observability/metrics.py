"""The platform's own StatsD metrics, sent through Airflow's stats client under one prefix.

Plain StatsD has no tags, so label values become dot-separated name segments in a fixed order
(``platform.<metric>.<label1>.<label2>``); ``monitoring/statsd_mapping.yml`` turns them back into
Prometheus labels. The same labels are also passed as tags for InfluxDB/Datadog-style exporters.
A metric can never fail the caller.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

PREFIX = "platform"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@lru_cache(maxsize=4096)
def segment(value: Any) -> str:
    """A label value as one name segment: dots and other separators become ``_``."""
    text = _UNSAFE.sub("_", str(value))
    return text or "none"


def metric_name(metric: str, labels: dict[str, Any]) -> str:
    return ".".join([PREFIX, metric, *(segment(v) for v in labels.values())])


_stats = None


def _client():
    global _stats
    if _stats is None:
        from airflow.sdk.observability import stats

        _stats = stats
    return _stats


def _send(kind: str, metric: str, value: float, labels: dict[str, Any]) -> None:
    try:
        stats = _client()
        name = metric_name(metric, labels)
        tags = {k: str(v) for k, v in labels.items()} or None
        if kind == "incr":
            stats.incr(name, int(value), tags=tags)
        elif kind == "gauge":
            stats.gauge(name, value, tags=tags)
        else:
            stats.timing(name, value, tags=tags)
    except Exception:  # a metric must never break the work it measures
        log.debug("could not emit metric %s", metric, exc_info=True)


def incr(metric: str, count: int = 1, **labels: Any) -> None:
    """Count ``metric`` (e.g. ``incr("breaker.rejected", breaker="database", target="warehouse")``)."""
    _send("incr", metric, count, labels)


def gauge(metric: str, value: float, **labels: Any) -> None:
    _send("gauge", metric, value, labels)


def timing(metric: str, milliseconds: float, **labels: Any) -> None:
    _send("timing", metric, milliseconds, labels)
