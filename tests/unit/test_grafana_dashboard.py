"""The Grafana dashboard queries only series the StatsD mapping produces, with labels they carry."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from devstack.airflow_env import PROJECT_ROOT, STATSD_ALLOW_LIST
from tests.support.metric_expectations import airflow_registry, allowed, platform_sample
from tests.support.project_metrics import scan_project
from tests.support.statsd_exporter import StatsdMapping
from ui.breaker_page import GRAFANA_DASHBOARD_PATH

GRAFANA = PROJECT_ROOT / "monitoring" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "analytics-platform.json"
_METRIC = re.compile(r"\b((?:airflow|platform)_[a-zA-Z0-9_]+)\b")
_SELECTOR_KEYS = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _series() -> dict[str, tuple[str, frozenset[str]]]:
    """Every Prometheus name the mapping produces -> (metric type, label keys)."""
    mapping = StatsdMapping.load(PROJECT_ROOT / "monitoring" / "statsd_mapping.yml")
    samples = []
    for metric in airflow_registry():
        values = {v: f"v_{v}" for v in metric.variables}
        samples += [(n, metric.metric_type) for n, _ in metric.emitted_names(values) if allowed(n, STATSD_ALLOW_LIST)]
    samples = [(f"airflow.{name}", kind) for name, kind in samples]
    samples += [(platform_sample(use)[0], use.kind) for use in scan_project()]
    series = {}
    for name, kind in samples:
        mapped = mapping.map(name, kind)
        if mapped.action == "map":
            series[mapped.name] = (kind, frozenset(mapped.labels))
    return series


def _targets():
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield pytest.param(target["expr"], id=f"{panel['title']}/{target['refId']}")


@pytest.fixture(scope="module")
def series():
    return _series()


@pytest.mark.parametrize("expr", list(_targets()))
def test_every_query_uses_mapped_series_and_their_labels(series, expr):
    code_domains = {use.domain for use in scan_project()}
    known = []
    for name in set(_METRIC.findall(expr)):
        base = name
        if name not in series:
            base = next((name.removesuffix(s) for s in _HISTOGRAM_SUFFIXES if name.endswith(s)), name)
            assert series.get(base, ("", ""))[0] == "observer" or base not in series, f"{name}: not a histogram"
        if base in series:
            known.append(base)
            continue
        # Metrics of features on other branches: once their domain has metrics in the code, the names must agree.
        domain = base.split("_")[1] if base.startswith("platform_") else None
        assert domain and domain not in code_domains, f"{name} is not produced by monitoring/statsd_mapping.yml"
    keys = set(_SELECTOR_KEYS.findall(expr))
    for grouping in _GROUPING.findall(expr):
        keys |= {k.strip() for k in grouping.split(",") if k.strip()}
    keys.discard("le")
    for base in known:
        assert keys <= series[base][1], f"{base} has labels {sorted(series[base][1])}, query uses {sorted(keys)}"


def test_dashboard_and_datasource_are_provisioned_for_compose():
    dashboard = json.loads(DASHBOARD.read_text())
    assert GRAFANA_DASHBOARD_PATH.startswith(f"/d/{dashboard['uid']}/")
    datasource = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = datasource["datasources"]
    assert source["url"] == "http://prometheus:9090"
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])}
    assert uids == {source["uid"]}
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "analytics-platform.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.override.yml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    assert f"./monitoring/grafana/dashboards:{path}:ro" in volumes
    assert "./monitoring/grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
    titles = {p["title"] for p in dashboard["panels"]}
    for wanted in ("Pool usage per category", "Task failures (1 h)", "Breaker states", "Alerts fired (1 h)"):
        assert wanted in titles
    assert any(t.startswith("Report throughput") for t in titles) and "Health checks" in titles
