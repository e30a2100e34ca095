"""statsd_exporter in tests: its mapping rules, emulated, and a UDP capture of real StatsD packets.

:class:`StatsdMapping` applies ``monitoring/statsd_mapping.yml`` the way prom/statsd-exporter
(pkg/mapper) does, so a test can tell what Prometheus series a StatsD name becomes:

* the file is validated like the exporter validates it at start-up (metric and label names,
  glob syntax, unknown keys), so a file the exporter would refuse fails here;
* ``glob`` rules (the default): the name is split on dots, ``*`` matches exactly one whole
  segment (possibly empty), only names with the rule's segment count match, and among the
  matching glob rules the first in the file wins;
* ``regex`` rules are tried only when no glob rule matched (whatever their place in the file), in
  file order, unanchored (Go's ``FindStringSubmatchIndex``), with Go's ``$name`` / ``${name}``
  expansion (``$1_x`` refers to a group named ``1_x``, i.e. nothing: write ``${1}_x``);
* ``match_metric_type`` restricts a rule to counters, gauges or observers (timers, histograms);
* a name no rule matches is "unmapped": the exporter would publish it under its escaped name.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# The exporter's own validation patterns (pkg/mapper/mapper.go).
_METRIC_SEGMENT = r"[a-zA-Z_]([a-zA-Z0-9_\-])*"
_METRIC_SUBSEQUENT = r"[a-zA-Z0-9_]([a-zA-Z0-9_\-])*"
_GLOB_LINE = re.compile(rf"^(\*|{_METRIC_SEGMENT})(\.\*|\.{_METRIC_SUBSEQUENT})*$")
_TEMPLATE_REF = r"(\$\{?\d+\}?)"
_METRIC_NAME = re.compile(rf"^([a-zA-Z_]|{_TEMPLATE_REF})([a-zA-Z0-9_]|{_TEMPLATE_REF})*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]+$")
# Glob rules format names and labels with this (pkg/mapper/fsm/formatter.go).
_GLOB_TEMPLATE = re.compile(r"\$\{?([a-zA-Z0-9_\$]+)\}?")
# Go regexp.Expand: $name or ${name}, name = longest run of letters, digits, underscore.
_GO_EXPAND = re.compile(r"\$(\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")

_RULE_KEYS = {
    "match",
    "name",
    "labels",
    "honor_labels",
    "observer_type",
    "match_type",
    "help",
    "action",
    "match_metric_type",
    "ttl",
    "summary_options",
    "histogram_options",
    "scale",
    "timer_type",
    "buckets",
    "quantiles",
}
#: StatsD packet type -> the exporter's metric type.
PACKET_TYPES = {"c": "counter", "g": "gauge", "ms": "observer", "h": "observer", "d": "observer"}


class MappingConfigError(ValueError):
    """The mapping file would be refused by statsd_exporter."""


@dataclass(frozen=True)
class Rule:
    index: int
    match: str
    match_type: str
    name: str
    labels: dict[str, str]
    action: str
    metric_type: str | None

    @property
    def segments(self) -> list[str]:
        return self.match.split(".")


@dataclass(frozen=True)
class Mapped:
    """The outcome of mapping one StatsD name: a series (``action == "map"``), a drop, or unmapped."""

    statsd_name: str
    action: str  # "map" | "drop" | "unmapped"
    name: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    rule: Rule | None = None


class StatsdMapping:
    def __init__(self, rules: list[Rule], defaults: dict[str, Any]) -> None:
        self.rules = rules
        self.defaults = defaults

    @classmethod
    def load(cls, path: Path) -> StatsdMapping:
        document = yaml.safe_load(path.read_text()) or {}
        unknown = set(document) - {"defaults", "mappings"}
        if unknown:
            raise MappingConfigError(f"unknown top-level keys {sorted(unknown)}")
        defaults = document.get("defaults") or {}
        default_match_type = defaults.get("match_type") or "glob"
        rules = []
        for index, raw in enumerate(document.get("mappings") or []):
            where = f"mapping #{index} ({raw.get('match')!r})"
            if set(raw) - _RULE_KEYS:
                raise MappingConfigError(f"{where}: unknown keys {sorted(set(raw) - _RULE_KEYS)}")
            labels = {str(k): str(v) for k, v in (raw.get("labels") or {}).items()}
            for key in labels:
                if not _LABEL_NAME.match(key):
                    raise MappingConfigError(f"{where}: invalid label key {key!r}")
            name = raw.get("name") or ""
            if not name:
                raise MappingConfigError(f"{where}: metric mapping didn't set a metric name")
            if not _METRIC_NAME.match(name):
                raise MappingConfigError(f"{where}: metric name {name!r} is not a valid (templated) metric name")
            match_type = raw.get("match_type") or default_match_type
            match = str(raw.get("match") or "")
            if match_type == "glob":
                if not _GLOB_LINE.match(match):
                    raise MappingConfigError(f"{where}: invalid glob match")
            elif match_type == "regex":
                try:
                    re.compile(match)
                except re.error as error:
                    raise MappingConfigError(f"{where}: invalid regex: {error}") from None
            else:
                raise MappingConfigError(f"{where}: unknown match_type {match_type!r}")
            action = raw.get("action") or "map"
            if action not in ("map", "drop"):
                raise MappingConfigError(f"{where}: unknown action {action!r}")
            metric_type = raw.get("match_metric_type")
            if metric_type not in (None, "counter", "gauge", "observer"):
                raise MappingConfigError(f"{where}: unknown match_metric_type {metric_type!r}")
            rules.append(Rule(index, match, match_type, name, labels, action, metric_type))
        return cls(rules, defaults)

    def map(self, statsd_name: str, metric_type: str) -> Mapped:
        """Map ``statsd_name`` of ``metric_type`` (``counter``, ``gauge``, ``observer``)."""
        segments = statsd_name.split(".")
        for rule in self.rules:  # globs first, first in file order wins
            if rule.match_type != "glob" or (rule.metric_type and rule.metric_type != metric_type):
                continue
            pattern = rule.segments
            if len(pattern) != len(segments):
                continue
            captures = []
            for want, got in zip(pattern, segments, strict=True):
                if want == "*":
                    captures.append(got)
                elif want != got:
                    break
            else:
                return self._result(statsd_name, rule, lambda t, c=captures: _format_glob(t, c))
        for rule in self.rules:  # then regexes, in file order
            if rule.match_type != "regex":
                continue
            found = re.search(rule.match, statsd_name)
            if not found or (rule.metric_type and rule.metric_type != metric_type):
                continue
            return self._result(statsd_name, rule, lambda t, m=found: _expand_go(t, m))
        return Mapped(statsd_name, "unmapped")

    @staticmethod
    def _result(statsd_name: str, rule: Rule, render) -> Mapped:
        if rule.action == "drop":
            return Mapped(statsd_name, "drop", rule=rule)
        name = _escape_metric_name(render(rule.name))
        return Mapped(statsd_name, "map", name, {k: render(v) for k, v in rule.labels.items()}, rule)


def _format_glob(template: str, captures: list[str]) -> str:
    def replace(found: re.Match) -> str:
        ref = found.group(1)
        if not ref.isdigit() or not 1 <= int(ref) <= len(captures):
            return ""
        return captures[int(ref) - 1]

    return _GLOB_TEMPLATE.sub(replace, template)


def _expand_go(template: str, found: re.Match) -> str:
    def replace(ref: re.Match) -> str:
        if ref.group(1) == "$":
            return "$"
        name = ref.group(2) or ref.group(3)
        try:
            value = found.group(int(name)) if name.isdigit() else found.group(name)
        except IndexError:  # no such group: Go expands it to nothing
            return ""
        return value or ""

    return _GO_EXPAND.sub(replace, template)


def _escape_metric_name(name: str) -> str:
    """statsd_exporter's EscapeMetricName: invalid characters become ``_``; a leading digit gets ``_``."""
    escaped = re.sub(r"[^a-zA-Z0-9_]", "_", name)
    return f"_{escaped}" if escaped[:1].isdigit() else escaped


# ----------------------------------------------------------------------------- capture


@dataclass(frozen=True)
class Packet:
    name: str
    value: str
    packet_type: str  # c, g, ms, ...

    @property
    def metric_type(self) -> str:
        return PACKET_TYPES[self.packet_type]


def parse_packets(datagram: str) -> list[Packet]:
    """StatsD lines ``name:value|type[|@rate][|#tags]``, one per line."""
    packets = []
    for line in datagram.splitlines():
        if not line.strip():
            continue
        name, _, rest = line.partition(":")
        value, _, kind = rest.partition("|")
        packets.append(Packet(name, value, kind.split("|")[0]))
    return packets


class PacketCapture:
    """A UDP socket on 127.0.0.1 collecting every StatsD packet sent to it."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.packets: list[Packet] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)

    @property
    def port(self) -> int:
        return self._socket.getsockname()[1]

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self._socket.recvfrom(65535)
            except TimeoutError:
                continue
            self.packets.extend(parse_packets(data.decode("utf-8", "replace")))

    def names(self) -> set[str]:
        return {p.name for p in self.packets}

    def wait_for(self, name: str, timeout: float = 5) -> Packet:
        """The first packet called ``name``, waiting up to ``timeout`` seconds for it."""
        from tests.support.waiting import wait_until

        return wait_until(
            lambda: next((p for p in list(self.packets) if p.name == name), None),
            what=f"StatsD packet {name!r} (got {sorted(self.names())})",
            timeout=timeout,
            interval=0.05,
        )

    def __enter__(self) -> PacketCapture:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()


@contextmanager
def capture_statsd(prefix: str = "airflow") -> Iterator[PacketCapture]:
    """Point this process's Airflow stats client at a fresh capture for the duration of the block."""
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    with PacketCapture() as capture:
        settings = {
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(capture.port),
            "AIRFLOW__METRICS__STATSD_PREFIX": prefix,
        }
        saved = {key: os.environ.get(key) for key in settings}
        os.environ.update(settings)
        stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=True)
        try:
            yield capture
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=True)
