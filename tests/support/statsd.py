"""Capture real StatsD packets sent by Airflow's stats client (the SDK's, used inside tasks)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class StatsdPacket:
    name: str
    value: str
    kind: str  # c, g, ms


class StatsdListener:
    """A UDP socket on 127.0.0.1 that parses every StatsD line it receives."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.packets: list[StatsdPacket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)

    @property
    def port(self) -> int:
        return self._socket.getsockname()[1]

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._socket.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            for line in data.decode(errors="replace").splitlines():
                name, _, rest = line.partition(":")
                value, _, kind = rest.partition("|")
                self.packets.append(StatsdPacket(name, value, kind.split("|")[0]))

    def names(self) -> set[str]:
        return {p.name for p in self.packets}

    def wait_for(self, name: str, timeout: float = 5) -> StatsdPacket:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for packet in list(self.packets):
                if packet.name == name:
                    return packet
            time.sleep(0.05)
        raise AssertionError(f"no StatsD packet {name!r}; got {sorted(self.names())}")

    def start(self) -> StatsdListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._socket.close()


@contextmanager
def capture_statsd(prefix: str = "airflow") -> Iterator[StatsdListener]:
    """Point this process's Airflow stats client at a fresh listener for the duration of the block."""
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    listener = StatsdListener().start()
    settings = {
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(listener.port),
        "AIRFLOW__METRICS__STATSD_PREFIX": prefix,
    }
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=True)
    try:
        yield listener
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=True)
        listener.stop()
