"""Parse time of each DAG file, as a ratio to a one-task TaskFlow DAG parsed in the same run.

Each measurement is a fresh process that has Airflow imported and its listeners loaded (as the
DAG processor's forked parsers have) and times ``DagBag`` on one file, so the modules a DAG file
imports are paid for.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import PROJECT_ROOT, Target, airflow_env, finish, print_table

BASELINE_DAG = """
from __future__ import annotations
import pendulum
from airflow.sdk import dag, task

@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
def baseline():
    @task
    def only_task():
        return 1
    only_task()

baseline()
"""

PROBE = """
import json, sys, time
import airflow, airflow.sdk
# The dag-processor loads the listeners (the OpenLineage provider's among them) before it forks
# the processes that parse the files: what they import is not paid per parse.
from airflow.listeners.listener import get_listener_manager
get_listener_manager()
from airflow.dag_processing.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "dags": len(bag.dags), "errors": list(bag.import_errors.values())}))
"""
#: A DAG file may cost at most this many times the trivial DAG (Cosmos files parse a manifest).
TARGET = Target("<=", 15)


def parse_once(path: Path, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], env=env, capture_output=True, text=True, check=True, cwd=PROJECT_ROOT
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["errors"] or not result["dags"]:
        raise SystemExit(f"{path.name}: no DAG parsed: {result['errors']}")
    return result["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = airflow_env()
    baseline_file = Path(tempfile.mkdtemp(prefix="bench-parse-")) / "baseline_dag.py"
    baseline_file.write_text(BASELINE_DAG)
    files = sorted(p for p in (PROJECT_ROOT / "dags").glob("*.py") if not p.name.startswith("_"))

    # Interleave the baseline with the files so machine noise hits both alike.
    samples: dict[Path, list[float]] = {p: [] for p in [baseline_file, *files]}
    for _ in range(args.repeat):
        for path in samples:
            samples[path].append(parse_once(path, env))
    baseline = statistics.median(samples[baseline_file])
    rows, ratios = [], {}
    for path in files:
        seconds = statistics.median(samples[path])
        ratios[path.name] = seconds / baseline
        rows.append([path.name, f"{seconds * 1000:.1f} ms", f"{ratios[path.name]:.2f}x"])
    rows.append(["(baseline: one-task TaskFlow DAG)", f"{baseline * 1000:.1f} ms", "1.00x"])
    print_table(["DAG file", "median parse", "ratio"], rows)
    worst = max(ratios, key=ratios.get)
    finish(
        "parse_time",
        ratios[worst],
        TARGET,
        worst_file=worst,
        baseline_ms=round(baseline * 1000, 2),
        per_file={k: round(v, 2) for k, v in ratios.items()},
    )


if __name__ == "__main__":
    main()
