"""Every metric the alerts feature emits maps to a labelled Prometheus series."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from include.metrics import metric_name

MAPPING = Path(__file__).resolve().parents[2] / "monitoring" / "statsd_mapping.yml"

# (metric, labels in emission order, expected Prometheus name, expected labels)
EMITTED = [
    ("alerts.evaluated", {"outcome": "met"}, "platform_alerts_evaluated", {"outcome": "met"}),
    ("alerts.transitions", {"kind": "fired"}, "platform_alerts_transitions", {"kind": "fired"}),
    ("alerts.triggered", {"severity": "critical"}, "platform_alerts_triggered", {"severity": "critical"}),
    (
        "alerts.notifications",
        {"channel": "slack", "outcome": "delivered"},
        "platform_alerts_notifications",
        {"channel": "slack", "outcome": "delivered"},
    ),
    ("alerts.outbox", {"status": "pending"}, "platform_alerts_outbox", {"status": "pending"}),
    ("alerts.batch_duration", {}, "platform_alerts_batch_duration", {}),
    ("alerts.definition_errors", {}, "platform_alerts_definition_errors", {}),
    ("alerts.events_purged", {}, "platform_alerts_events_purged", {}),
]


def _glob(match: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(match).replace(r"\*", "([^.]+)") + "$")


def _map(name: str) -> tuple[str, dict[str, str]] | None:
    for rule in yaml.safe_load(MAPPING.read_text())["mappings"]:
        if rule.get("match_type") == "regex":
            continue
        found = _glob(rule["match"]).match(name)
        if found:
            groups = found.groups()
            labels = {
                k: re.sub(r"\$(\d)", lambda m, g=groups: g[int(m.group(1)) - 1], v)
                for k, v in rule.get("labels", {}).items()
            }
            return rule["name"], labels
    return None


@pytest.mark.parametrize(("metric", "labels", "prom_name", "prom_labels"), EMITTED, ids=[e[0] for e in EMITTED])
def test_alert_metrics_are_mapped(metric, labels, prom_name, prom_labels):
    assert _map("airflow." + metric_name(metric, labels)) == (prom_name, prom_labels)
