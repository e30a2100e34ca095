"""Every metric of the analytics jobs becomes a labelled Prometheus series through the mapping."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from include.metrics import metric_name

MAPPING = Path(__file__).resolve().parents[2] / "monitoring" / "statsd_mapping.yml"

#: (metric, labels in emission order) -> (Prometheus name, labels)
ANALYTICS_METRICS = [
    (("catalog.objects", {}), ("platform_catalog_objects", {})),
    (("catalog.duration", {}), ("platform_catalog_duration", {})),
    (("catalog.changes", {"change": "dropped"}), ("platform_catalog_changes", {"change": "dropped"})),
    (("catalog.failures", {}), ("platform_catalog_failures", {})),
    (
        ("mview.refreshes", {"status": "success", "mode": "concurrently"}),
        ("platform_mview_refreshes", {"status": "success", "mode": "concurrently"}),
    ),
    (("mview.duration", {"mode": "plain"}), ("platform_mview_duration", {"mode": "plain"})),
    (("query_stats.runs", {"status": "skipped"}), ("platform_query_stats_runs", {"status": "skipped"})),
    (("query_stats.statements", {}), ("platform_query_stats_statements", {})),
    (
        ("log_cleanup.deleted", {"table": "analytics_refresh_log"}),
        ("platform_log_cleanup_deleted", {"table": "analytics_refresh_log"}),
    ),
    (
        ("analytics_api.notifications", {"status": "failed"}),
        ("platform_analytics_api_notifications", {"status": "failed"}),
    ),
]


def _map(statsd_name: str) -> tuple[str, dict[str, str]] | None:
    """statsd_exporter's glob matching: ``*`` is one dot-free segment, the first matching rule wins."""
    for rule in yaml.safe_load(MAPPING.read_text())["mappings"]:
        pattern = "^" + re.escape(rule["match"]).replace(r"\*", "([^.]+)") + "$"
        found = re.match(pattern, statsd_name)
        if found:
            groups = found.groups()
            labels = {
                key: re.sub(r"\$(\d+)", lambda m, g=groups: g[int(m.group(1)) - 1], value)
                for key, value in (rule.get("labels") or {}).items()
            }
            return rule["name"], labels
    return None


@pytest.mark.parametrize(("emitted", "expected"), ANALYTICS_METRICS, ids=lambda v: v[0] if isinstance(v, tuple) else v)
def test_the_metric_maps_to_its_prometheus_series(emitted, expected):
    metric, labels = emitted
    assert _map("airflow." + metric_name(metric, labels)) == expected
