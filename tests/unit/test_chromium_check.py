"""``make test`` first makes sure Chromium is there (tests/support/chromium.py), or says how to get it."""

from __future__ import annotations

import subprocess
import sys

from devstack.airflow_env import PROJECT_ROOT


def _check(path: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tests.support.chromium"],
        env={"PATH": path},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_chromium_on_path_is_used(tmp_path):
    browser = tmp_path / "chromium"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)

    result = _check(str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Chromium: {browser}"


def test_without_chromium_or_a_way_to_install_it_the_check_stops_with_the_command(tmp_path):
    result = _check(str(tmp_path))  # no browser, no apt-get on this PATH

    assert result.returncode == 1
    assert "make test needs Chromium" in result.stderr
    assert "install Chromium so that one of chromium, chromium-browser, google-chrome is on PATH" in result.stderr
    assert "installing" not in result.stderr
