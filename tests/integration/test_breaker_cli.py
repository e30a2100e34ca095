"""Operators see and reset breakers with `python -m include breakers ...`, no Python needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from devstack.airflow_env import PROJECT_ROOT
from hooks.circuit_breaker import BreakerConfig, CircuitBreaker


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "include", "breakers", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        cwd=PROJECT_ROOT,
        timeout=60,
    )


def _trip(target: str) -> None:
    breaker = CircuitBreaker("external_api", target, config=BreakerConfig(failure_threshold=3, recovery_timeout=120))
    for _ in range(3):
        with pytest.raises(ConnectionError):
            breaker.call(lambda: (_ for _ in ()).throw(ConnectionRefusedError("refused")))


def test_status_lists_every_breaker_and_target_with_state_and_retry_after():
    _trip("hooks.slack.com")
    CircuitBreaker("database", "warehouse").call(lambda: None)
    result = _cli("status")
    assert result.returncode == 0, result.stderr
    lines = {
        line.split()[1]: line.split()
        for line in result.stdout.splitlines()
        if line.startswith(("database", "external_api"))
    }
    assert lines["hooks.slack.com"][2] == "open" and lines["hooks.slack.com"][3] == "3"
    assert lines["hooks.slack.com"][-1].endswith("s")  # retry after, in seconds
    assert lines["warehouse"][2] == "closed"
    assert "database      trips after 5 failures, half-opens after 60s" in result.stdout

    as_json = json.loads(_cli("status", "--json").stdout)
    by_target = {entry["target"]: entry for entry in as_json}
    assert by_target["hooks.slack.com"]["state"] == "open" and by_target["hooks.slack.com"]["opened_at"]
    assert 0 < by_target["hooks.slack.com"]["retry_after"] <= 120


def test_reset_closes_a_breaker_for_one_or_all_targets():
    _trip("a.example.com")
    _trip("b.example.com")
    result = _cli("reset", "external_api", "--target", "a.example.com")
    assert result.returncode == 0 and "reset external_api/a.example.com -> closed" in result.stdout
    assert CircuitBreaker("external_api", "a.example.com").status().state == "closed"
    assert CircuitBreaker("external_api", "b.example.com").status().state == "open"
    assert _cli("reset", "external_api").returncode == 0
    assert CircuitBreaker("external_api", "b.example.com").status().state == "closed"
    missing = _cli("reset", "dbt")
    assert missing.returncode == 1 and "no targets known for breaker 'dbt'" in missing.stderr
