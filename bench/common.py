"""Shared helpers of the benchmarks: environment, timing, and the final JSON line."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def airflow_env(home: Path | None = None) -> dict[str, str]:
    """Environment for an Airflow process of the project, with a throw-away AIRFLOW_HOME."""
    from devstack.airflow_env import airflow_environment
    from include.settings import database_url, redis_url

    home = home or Path(tempfile.mkdtemp(prefix="bench-airflow-"))
    env = airflow_environment(home, database_url=database_url(), redis_url=redis_url())
    return {**os.environ, **env}


def median_seconds(func: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def emit_result(bench: str, ratio: float, target: str, **extra: Any) -> None:
    """The last line of every benchmark: one JSON object with at least bench, ratio and target."""
    print(json.dumps({"bench": bench, "ratio": round(ratio, 3), "target": target, **extra}))
