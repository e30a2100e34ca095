"""Every metric the reports feature emits has a statsd_exporter rule giving its Prometheus name and labels."""

from __future__ import annotations

import re

import pytest
import yaml

from devstack.airflow_env import PROJECT_ROOT
from include.metrics import metric_name

#: (metric, labels in emission order) as include/reports/runs.py emits them.
REPORT_METRICS = [
    ("reports.planned", {"trigger": "scheduled"}),
    ("reports.generated", {"format": "csv.gz", "trigger": "adhoc"}),
    ("reports.rows", {"format": "xlsx"}),
    ("reports.bytes", {"format": "csv"}),
    ("reports.duration", {"format": "csv"}),
    ("reports.failed", {"reason": "query"}),
    ("reports.delivered", {"channel": "email"}),
    ("reports.delivery_failed", {"channel": "object_storage"}),
    ("reports.cleaned", {}),
]


def _rules():
    mapping = yaml.safe_load((PROJECT_ROOT / "monitoring" / "statsd_mapping.yml").read_text())
    return mapping["mappings"]


def _match(statsd_name: str):
    for rule in _rules():
        if rule.get("match_type") == "regex":
            continue
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


@pytest.mark.parametrize(("metric", "labels"), REPORT_METRICS, ids=[m for m, _ in REPORT_METRICS])
def test_report_metric_maps_to_a_labelled_prometheus_series(metric, labels):
    statsd_name = "airflow." + metric_name(metric, labels)
    assert _match(statsd_name) == (
        "platform_" + metric.replace(".", "_"),
        {key: re.sub(r"[^A-Za-z0-9_-]", "_", value) for key, value in labels.items()},
    )
