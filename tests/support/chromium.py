"""Chromium for the Circuit breakers page test: found on PATH, else installed where that is possible.

``make test`` runs ``python -m tests.support.chromium`` before anything else (standard library only,
so it runs before the venv exists). With Chromium missing it installs the Debian package when it
may (as root, or with password-less sudo, through apt-get); otherwise it exits non-zero with the one
command that fixes it.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) binary on PATH, or ``None``."""
    for name in BROWSER_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def install_command() -> str:
    """The command that installs Chromium on this machine, for a person to run."""
    if shutil.which("apt-get"):
        sudo = "" if os.geteuid() == 0 else "sudo "
        return f"{sudo}apt-get update && {sudo}apt-get install -y chromium"
    if platform.system() == "Darwin":
        return "brew install --cask chromium"
    return f"install Chromium so that one of {', '.join(BROWSER_NAMES)} is on PATH"


def _installer() -> list[str] | None:
    """How this process may install the package itself: apt-get as root or with password-less sudo."""
    if not shutil.which("apt-get"):
        return None
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n"]
    return None


def ensure_chromium() -> str | None:
    """Chromium's path: found, or installed now; ``None`` when it is missing and cannot be installed here."""
    found = find_chromium()
    if found:
        return found
    prefix = _installer()
    if prefix is None:
        return None
    print("Chromium is missing; installing it with apt-get", file=sys.stderr)
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        result = subprocess.run([*prefix, *command], env=environment, capture_output=True, text=True)
        if result.returncode != 0:
            print(f"{' '.join(command)} failed:\n{(result.stdout + result.stderr)[-2000:]}", file=sys.stderr)
            return None
    return find_chromium()


def main() -> int:
    path = ensure_chromium()
    if path:
        print(f"Chromium: {path}")
        return 0
    print(
        "make test needs Chromium (tests/integration/test_breaker_page.py drives the Circuit breakers page "
        f"in it) and could not install it. Run:\n\n    {install_command()}\n\nthen make test again.",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
