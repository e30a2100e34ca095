"""Parse time of the ``transform`` DAG: the shipped manifest against ``dbt ls``, and the cost per model.

1. ``dags/transform.py`` over the bundled project rendered from its manifest (``LoadMode.DBT_MANIFEST``,
   the shipped set-up) and, in the same run, the same project rendered with ``LoadMode.DBT_LS``
   (the DAG's fallback when the manifest is missing; Cosmos's dbt-ls cache off, so every parse
   runs ``dbt ls`` as on a cold cache). Ratio = DBT_LS / DBT_MANIFEST, target >= 10.
2. The same DAG file over generated projects of 10 and 200 models (manifest mode): the parse cost
   per model is the slope between the two; the 200-model project is also parsed with ``dbt ls``.

Each measurement is a fresh process that has Airflow imported and times ``DagBag`` on the DAG
file. *Cold* (the headline): nothing else loaded, as in Airflow 3.3's DAG processor and task
workers, which parse each file in a fresh (forked) process, so importing Cosmos is paid for.
*Warm*: the same with Cosmos and the Airflow plugins already loaded, which isolates the cost of
rendering the dbt project itself. All configurations are interleaved round by round.
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

DAG_FILE = PROJECT_ROOT / "dags" / "transform.py"
TARGET = Target(">=", 10)
LS_CACHE = "AIRFLOW__COSMOS__ENABLE_CACHE_DBT_LS"

PROBE = """
import json, sys, time
import airflow, airflow.sdk
if sys.argv[2] == "warm":
    import cosmos.operators.local
    from airflow.sdk.plugins_manager import _get_plugins
    _get_plugins()
from airflow.dag_processing.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
elapsed = time.perf_counter() - started
dag = bag.dags.get("transform")
graph = dag.task_group_dict["dbt"].dbt_graph if dag else None
print(json.dumps({
    "seconds": elapsed,
    "tasks": len(dag.tasks) if dag else 0,
    "load_method": graph.load_method.value if graph else None,
    "errors": [str(e)[-500:] for e in bag.import_errors.values()],
}))
"""


def parse_once(env: dict[str, str], mode: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(DAG_FILE), mode], env=env, capture_output=True, text=True, cwd=PROJECT_ROOT
    )
    lines = [line for line in out.stdout.strip().splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"parse failed ({out.returncode}): {out.stderr[-2000:]}")
    result = json.loads(lines[-1])
    if result["errors"] or not result["tasks"]:
        raise SystemExit(f"transform DAG did not parse: {result['errors']}")
    return result


def build_manifest(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "include", "dbt", "manifest"], env=env, check=True, capture_output=True)


def generate_project(root: Path, models: int) -> dict[str, str]:
    """A dbt project of ``models`` models (a layered graph, one test each), its manifest built; its env."""
    project = root / f"generated_{models}"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        f"name: generated_{models}\nversion: '1.0.0'\nconfig-version: 2\nprofile: analytics\n"
        f"models:\n  generated_{models}:\n    +materialized: view\n"
    )
    schema = ["version: 2", "models:"]
    for index in range(models):
        parents = sorted({p for p in (index - 1, index // 2 - 1) if p >= 0})
        body = " union all ".join(f"select id from {{{{ ref('model_{p:03d}') }}}}" for p in parents)
        (project / "models" / f"model_{index:03d}.sql").write_text(body or "select 1 as id")
        schema += [f"  - name: model_{index:03d}", "    columns:", "      - name: id", "        data_tests: [not_null]"]
    (project / "models" / "schema.yml").write_text("\n".join(schema) + "\n")
    env = {
        **airflow_env(root / f"home_{models}"),
        "DBT_PROJECT_PATH": str(project),
        "DBT_PROFILES_DIR": str(PROJECT_ROOT / "dbt"),
    }
    build_manifest(env)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-dbt-parse-"))
    no_manifest = {"DBT_MANIFEST_PATH": str(work / "no-manifest.json"), LS_CACHE: "False"}

    shipped = airflow_env(work / "home")
    build_manifest(shipped)
    small, large = generate_project(work, 10), generate_project(work, 200)
    configurations = {
        "bundled project, DBT_MANIFEST (shipped)": (shipped, "cold"),
        "bundled project, DBT_LS (no manifest)": ({**shipped, **no_manifest}, "cold"),
        "bundled project, DBT_MANIFEST, warm": (shipped, "warm"),
        "bundled project, DBT_LS, warm": ({**shipped, **no_manifest}, "warm"),
        "generated 10 models, DBT_MANIFEST": (small, "cold"),
        "generated 200 models, DBT_MANIFEST": (large, "cold"),
        "generated 200 models, DBT_LS": ({**large, **no_manifest}, "cold"),
    }
    samples: dict[str, list[dict]] = {name: [] for name in configurations}
    for _ in range(args.repeat):  # interleaved, so machine noise hits every configuration alike
        for name, (env, mode) in configurations.items():
            samples[name].append(parse_once(env, mode))
    seconds = {name: statistics.median(s["seconds"] for s in runs) for name, runs in samples.items()}
    for name, runs in samples.items():
        expected = "dbt_ls" if "DBT_LS" in name else "dbt_manifest"
        assert runs[-1]["load_method"] == expected, (name, runs[-1])

    names = list(configurations)
    ratio = seconds[names[1]] / seconds[names[0]]
    warm_ratio = seconds[names[3]] / seconds[names[2]]
    per_model_ms = (seconds[names[5]] - seconds[names[4]]) / (200 - 10) * 1000
    print_table(
        ["DAG rendered from", "tasks", "median parse"],
        [[name, runs[-1]["tasks"], f"{seconds[name] * 1000:.0f} ms"] for name, runs in samples.items()],
    )
    print(
        f"DBT_LS / DBT_MANIFEST: cold {ratio:.1f}x, warm {warm_ratio:.1f}x; "
        f"200 models {seconds[names[6]] / seconds[names[5]]:.1f}x; per model (10 -> 200): {per_model_ms:.2f} ms"
    )
    finish(
        "dbt_parse",
        ratio,
        TARGET,
        manifest_ms=round(seconds[names[0]] * 1000, 1),
        dbt_ls_ms=round(seconds[names[1]] * 1000, 1),
        warm_ratio=round(warm_ratio, 2),
        warm_manifest_ms=round(seconds[names[2]] * 1000, 1),
        warm_dbt_ls_ms=round(seconds[names[3]] * 1000, 1),
        per_model_ms=round(per_model_ms, 2),
        parse_10_models_ms=round(seconds[names[4]] * 1000, 1),
        parse_200_models_ms=round(seconds[names[5]] * 1000, 1),
        dbt_ls_200_models_ms=round(seconds[names[6]] * 1000, 1),
        ratio_200_models=round(seconds[names[6]] / seconds[names[5]], 2),
        tasks_200_models=samples[names[5]][-1]["tasks"],
    )


if __name__ == "__main__":
    main()
