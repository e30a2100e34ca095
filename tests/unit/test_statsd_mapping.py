"""monitoring/statsd_mapping.yml against Airflow's metric registry and every platform metric in the code.

The captured-packet check (a real DAG run sending StatsD) is tests/integration/test_statsd_metrics.py.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from devstack.airflow_env import PROJECT_ROOT, STATSD_ALLOW_LIST, statsd_environment
from tests.support.metric_expectations import Expected, airflow_registry, allowed, platform_sample
from tests.support.project_metrics import MetricScanError, scan_file, scan_project
from tests.support.statsd_exporter import MappingConfigError, StatsdMapping

MAPPING_FILE = PROJECT_ROOT / "monitoring" / "statsd_mapping.yml"


@pytest.fixture(scope="module")
def mapping() -> StatsdMapping:
    return StatsdMapping.load(MAPPING_FILE)


def _outcome(mapping: StatsdMapping, name: str, metric_type: str) -> Expected:
    mapped = mapping.map(name, metric_type)
    return Expected(mapped.action, mapped.name, mapped.labels)


# ----------------------------------------------------------------------------- the emulator itself


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yml"
    path.write_text(text)
    return path


def test_emulator_follows_statsd_exporter_glob_and_regex_semantics(tmp_path):
    mapping = StatsdMapping.load(
        _write(
            tmp_path,
            """
mappings:
  - match: 'a\\.b\\.(.*)'
    match_type: regex
    name: regex_${1}
  - {match: a.b.*, name: "first_${1}", labels: {xx: "$1"}}
  - {match: a.b.c, name: shadowed}
  - {match: a.*.*, name: "two_$1_$2"}
  - {match: a.b.*, name: gauge_only, match_metric_type: gauge}
  - {match: d.*, action: drop, name: dropped}
""",
        ),
    )
    # `*` is exactly one segment; the first glob in the file wins; regexes only when no glob matched.
    assert _outcome(mapping, "a.b.c", "counter") == Expected("map", "first_c", {"xx": "c"})
    assert _outcome(mapping, "a.b.c.d", "counter") == Expected("map", "regex_c_d", {})
    # Glob templates: `$1_$2` is read as ONE reference `1_$2`, which the exporter replaces with nothing.
    assert _outcome(mapping, "a.x.y", "counter").name == "two_"
    assert _outcome(mapping, "d.anything", "gauge") == Expected("drop")
    assert _outcome(mapping, "e.f", "counter").action == "unmapped"


def test_emulator_refuses_files_the_exporter_refuses(tmp_path):
    for bad in (
        "mappings: [{match: 'a.b*', name: x}]",  # `*` must be a whole segment
        "mappings: [{match: a.b, name: 'bad-name'}]",
        "mappings: [{match: a.b, name: x, labels: {'a': '$1'}}]",  # label names need two characters
        "mappings: [{match: a.b}]",
        "mappings: [{match: a.b, name: x, lables: {}}]",
    ):
        with pytest.raises(MappingConfigError):
            StatsdMapping.load(_write(tmp_path, bad))


# ----------------------------------------------------------------------------- Airflow's metrics


def _registry_cases():
    """Every name Airflow 3.3 can send that metrics_allow_list lets through (the rest never leaves Airflow)."""
    for metric in airflow_registry():
        values = {variable: f"v_{variable}" for variable in metric.variables}
        for name, expected in metric.emitted_names(values):
            if allowed(name, STATSD_ALLOW_LIST):
                yield pytest.param(name, metric.metric_type, expected, id=name)


@pytest.mark.parametrize(("name", "metric_type", "expected"), list(_registry_cases()))
def test_every_airflow_metric_let_through_maps_to_its_labelled_series(mapping, name, metric_type, expected):
    assert _outcome(mapping, f"airflow.{name}", metric_type) == expected


def test_the_issue_s_airflow_metrics_are_labelled(mapping):
    want = {
        "airflow.dagrun.duration.failed.reports": ("airflow_dagrun_duration", {"state": "failed", "dag_id": "reports"}),
        "airflow.ti.finish.alerts.deliver.failed": (
            "airflow_ti_finish",
            {"dag_id": "alerts", "task_id": "deliver", "state": "failed"},
        ),
        "airflow.dag.alerts.deliver.duration": ("airflow_task_duration", {"dag_id": "alerts", "task_id": "deliver"}),
        "airflow.pool.running_slots.dbt": ("airflow_pool_slots", {"pool": "dbt", "kind": "running"}),
        "airflow.executor.open_slots.LocalExecutor": ("airflow_executor_open_slots", {"executor": "LocalExecutor"}),
        "airflow.scheduler_heartbeat": ("airflow_scheduler_heartbeat", {}),
        "airflow.dag_processing.last_duration.dags-folder.alerts": (
            "airflow_dag_processing_last_duration",
            {"bundle": "dags-folder", "dag_file": "alerts"},
        ),
    }
    types = {"airflow.pool.running_slots.dbt": "gauge", "airflow.executor.open_slots.LocalExecutor": "gauge"}
    for name, (prometheus_name, labels) in want.items():
        assert _outcome(mapping, name, types.get(name, "observer" if "dur" in name else "counter")) == Expected(
            "map", prometheus_name, labels
        ), name


# ----------------------------------------------------------------------------- the platform's metrics


def test_platform_metric_calls_are_statically_readable_and_consistent():
    uses = scan_project()
    assert uses, "no platform metrics found in include/, plugins/, dags/"
    by_metric = defaultdict(set)
    for use in uses:
        by_metric[use.metric].add((use.kind, use.labels))
    inconsistent = {m: sorted(v) for m, v in by_metric.items() if len(v) > 1}
    assert inconsistent == {}, "a metric must keep one type and one label order everywhere"


@pytest.mark.parametrize("use", scan_project(), ids=lambda u: f"{u.metric}@{u.where}")
def test_every_platform_metric_has_a_mapping_rule(mapping, use):
    name, expected = platform_sample(use)
    mapped = mapping.map(name, use.kind)
    pattern = ".".join(["airflow.platform", use.metric, *["*"] * len(use.labels)])
    labels = ", ".join(f'{key}: "${index}"' for index, key in enumerate(use.labels, 1))
    assert mapped.action == "map", (
        f"{use.metric} ({use.where}) is {mapped.action} as {name}; add to monitoring/statsd_mapping.yml:\n"
        f"  - match: {pattern}\n    name: {use.prometheus_name}\n    labels: {{{labels}}}"
    )
    assert Expected(mapped.action, mapped.name, mapped.labels) == expected


def test_scanner_reads_keyword_and_helper_labels_and_refuses_dynamic_names(tmp_path):
    module = tmp_path / "mod.py"
    module.write_text(
        "from observability import metrics\n"
        "class B:\n"
        "    def _labels(self):\n"
        "        return {'breaker': self.name, 'target': self.target}\n"
        "    def go(self, n):\n"
        "        metrics.incr('x.calls', n, **self._labels(), outcome='ok')\n"
        "        metrics.timing('x.seconds', 3.0, report='r')\n"
    )
    uses = scan_file(module, tmp_path)
    assert [(u.metric, u.kind, u.labels) for u in uses] == [
        ("x.calls", "counter", ("breaker", "target", "outcome")),
        ("x.seconds", "observer", ("report",)),
    ]
    module.write_text("from observability import metrics\nname = 'a'\nmetrics.gauge(name, 1)\n")
    with pytest.raises(MetricScanError, match="string literal"):
        scan_file(module, tmp_path)


# ----------------------------------------------------------------------------- the file as a whole


def test_series_of_one_name_always_have_the_same_labels(mapping):
    labels_by_name = defaultdict(set)
    for rule in mapping.rules:
        if rule.action == "map" and "$" not in rule.name:
            labels_by_name[rule.name].add(tuple(sorted(rule.labels)))
    assert {n: v for n, v in labels_by_name.items() if len(v) > 1} == {}


def test_statsd_settings_agree_between_the_dockerfile_and_make_run():
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    settings = dict(re.findall(r"(AIRFLOW__METRICS__\w+)=(\"[^\"]*\"|\S+)", dockerfile))
    settings = {k: v.strip('"') for k, v in settings.items()}
    local = statsd_environment()
    assert settings["AIRFLOW__METRICS__STATSD_ON"] == "True" == local["AIRFLOW__METRICS__STATSD_ON"]
    assert settings["AIRFLOW__METRICS__STATSD_PORT"] == "9125"
    for key in ("STATSD_PREFIX", "LEGACY_NAMES_ON", "METRICS_ALLOW_LIST"):
        assert settings[f"AIRFLOW__METRICS__{key}"] == local[f"AIRFLOW__METRICS__{key}"], key


def test_compose_wires_the_mapping_into_statsd_exporter_and_prometheus_scrapes_it():
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.override.yml").read_text())
    exporter = compose["services"]["statsd-exporter"]
    assert "./monitoring/statsd_mapping.yml:/etc/statsd-exporter/mapping.yml:ro" in exporter["volumes"]
    assert any("--statsd.mapping-config=/etc/statsd-exporter/mapping.yml" in arg for arg in exporter["command"])
    prometheus = yaml.safe_load((PROJECT_ROOT / "monitoring" / "prometheus.yml").read_text())
    targets = [t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    assert "statsd-exporter:9102" in targets
