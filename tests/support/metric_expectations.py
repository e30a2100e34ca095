"""What each StatsD name must become in Prometheus, derived from the metrics' sources, not the mapping.

* Airflow's metrics come from Airflow's own registry (``metrics_template.yaml`` of the installed
  Airflow): a metric with a legacy name becomes ``airflow_<new name>`` with its name variables as
  labels (renamed by :data:`LABEL_NAMES`, a few grouped by :data:`GROUPED`) and its untagged
  new-style copy is dropped; a metric without variables becomes ``airflow_<name>`` without labels.
* The platform's metrics come from the code (:mod:`tests.support.project_metrics`):
  ``platform_<domain>_<event>`` with the call's label keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from tests.support.project_metrics import MetricUse

REGISTRY_TYPES = {"counter": "counter", "gauge": "gauge", "timer": "observer"}
#: Airflow name variable -> Prometheus label.
LABEL_NAMES = {
    "pool_name": "pool",
    "executor_class_name": "executor",
    "file_name": "dag_file",
    "bundle_name": "bundle",
    "operator_name": "operator",
}
#: Metrics published as one series with an extra label ("pool slots by pool and kind", "run duration by state").
GROUPED = {
    "dagrun.duration.success": ("airflow_dagrun_duration", {"state": "success"}),
    "dagrun.duration.failed": ("airflow_dagrun_duration", {"state": "failed"}),
    **{
        f"pool.{kind}_slots": ("airflow_pool_slots", {"kind": kind})
        for kind in ("open", "queued", "running", "deferred", "scheduled")
    },
}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Expected:
    action: str  # "map" | "drop"
    name: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistryMetric:
    name: str
    metric_type: str  # counter | gauge | observer
    legacy_name: str | None
    variables: tuple[str, ...]

    def emitted_names(self, values: dict[str, str]) -> list[tuple[str, Expected]]:
        """The names Airflow sends for ``values`` (legacy names on), each with its expected series."""
        safe = {k: str(v).replace(".", "__") for k, v in values.items()}
        if self.legacy_name:
            return [
                (self.legacy_name.format(**safe), self.expected(values)),
                (self.name, Expected("drop")),
            ]
        return [(self.name.format(**safe), self.expected(values))]

    def expected(self, values: dict[str, str]) -> Expected:
        labels = {LABEL_NAMES.get(k, k): str(v).replace(".", "__") for k, v in values.items()}
        if self.name in GROUPED:
            name, extra = GROUPED[self.name]
            return Expected("map", name, {**extra, **labels})
        bare = re.sub(r"[._]?\{\w+\}", "", self.name)
        return Expected("map", "airflow_" + re.sub(r"[^a-zA-Z0-9_]", "_", bare), labels)


@cache
def airflow_registry() -> tuple[RegistryMetric, ...]:
    """Airflow's metric registry, as installed (core's and the task SDK's copies must agree)."""
    import airflow

    core = Path(airflow.__file__).parent / "_shared/observability/metrics/metrics_template.yaml"
    sdk = Path(airflow.__file__).parent / "sdk/_shared/observability/metrics/metrics_template.yaml"
    if core.read_text() != sdk.read_text():
        raise AssertionError("Airflow core and task SDK metric registries differ; check both")
    metrics = []
    for entry in yaml.safe_load(core.read_text())["metrics"]:
        legacy = entry.get("legacy_name")
        variables = tuple(entry.get("name_variables") or ())
        placeholders = set(_PLACEHOLDER.findall(entry["name"]) + _PLACEHOLDER.findall(legacy or ""))
        metrics.append(
            RegistryMetric(
                entry["name"],
                REGISTRY_TYPES[entry["type"]],
                None if legacy in (None, "-") else legacy,
                tuple(v for v in variables if v in placeholders),
            )
        )
    return tuple(metrics)


def identify_airflow(name: str) -> tuple[RegistryMetric, Expected] | None:
    """The registry metric an emitted Airflow name (without prefix) belongs to, and its expected series."""
    candidates = []
    for metric in airflow_registry():
        if metric.legacy_name and name == metric.name:
            return metric, Expected("drop")
        template = metric.legacy_name or metric.name
        pattern = (
            "^"
            + _PLACEHOLDER.sub(
                lambda m: f"(?P<{m.group(1)}>[^.]+)", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")
            )
            + "$"
        )
        found = re.match(pattern, name)
        if found:
            candidates.append((len(found.groupdict()), metric, found.groupdict()))
    if not candidates:
        return None
    _, metric, values = min(candidates, key=lambda c: c[0])
    labels = {LABEL_NAMES.get(k, k): v for k, v in values.items()}
    expected = metric.expected({})
    return metric, Expected(expected.action, expected.name, {**expected.labels, **labels})


def allowed(name: str, allow_list: str | None) -> bool:
    """Airflow's metrics_allow_list test: any entry found (re.findall) in the lower-cased name."""
    if not allow_list:
        return True
    entries = [item.strip().lower() for item in allow_list.split(",")]
    return any(re.findall(entry, name.strip().lower()) for entry in entries)


def platform_sample(use: MetricUse, prefix: str = "airflow") -> tuple[str, Expected]:
    """A StatsD name of a platform metric with sample label values, and its expected series."""
    from observability.metrics import metric_name

    values = {key: f"sample_{key}" for key in use.labels}
    return f"{prefix}.{metric_name(use.metric, values)}", Expected("map", use.prometheus_name, values)


def identify_platform(
    name: str, catalog: list[MetricUse], prefix: str = "airflow"
) -> tuple[MetricUse, Expected] | None:
    """The platform metric an emitted name belongs to (by name and label count), and its expected series."""
    segments = name.split(".")
    for use in catalog:
        head = [prefix, "platform", *use.metric.split(".")]
        if segments[: len(head)] == head and len(segments) == len(head) + len(use.labels):
            values = dict(zip(use.labels, segments[len(head) :], strict=True))
            return use, Expected("map", use.prometheus_name, values)
    return None
