"""Runtime of the ``transform`` DAG under the real scheduler against the same dbt work from the command line.

For generated dbt projects of 50 and 200 models (layers with fan-in and fan-out, ``unique`` and
``not_null`` tests on most models, two sources with freshness thresholds), this starts the
``make run`` stack (LocalExecutor, isolated: its own home, port and warehouse database) on that
project, triggers ``transform`` through the REST API and times each run from its start to its
success. In the same run, on the same database, the baseline is the command line doing the same
work with the same ``threads``: ``dbt source freshness``, ``dbt build``, ``dbt docs generate``.
The local per-model mode (``DBT_EXECUTION_MODE=local``) is the second reference, measured at
50 models only (at 200 models it takes the better part of an hour).

Printed: DAG / command line for each size, the local-mode ratio, and the *tail*: the time from
the end of the producer task (``dbt.dbt_build``) to the end of the run. Targets: ratio <= 1.25
at 200 models and tail <= 10 s; the script exits non-zero when either is missed. The stack
connects as the database's owner: the benchmark's scratch database is its own, and what it
times is scheduling, not privileges.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import Target, admin_database_url, create_scratch_database, drop_database, finish, print_table

SIZES = (50, 200)
LOCAL_MODE_MODELS = 50
TARGET_RATIO = Target("<=", 1.25)
TARGET_TAIL_S = Target("<=", 10.0)
RUN_TIMEOUT_S = 3600
LAYERS = 8
SOURCE_ROWS = 2000
DBT = str(Path(sys.executable).parent / "dbt")


# ---------------------------------------------------------------------- the generated projects


def generate_project(root: Path, models: int, schema: str, seed: int = 15) -> Path:
    """A dbt project of ``models`` models over two sources; returns its directory.

    One model in ten is a staging model reading a source; the others sit in seven layers, each
    reading a model of the layer before, often one or two more from any earlier layer, and in a
    third of the cases one of the two "hub" models of an earlier layer (fan-in and fan-out). One
    model in four is a view, the rest tables; four models in five have ``unique`` and
    ``not_null`` tests on their key.
    """
    rng = random.Random(seed)
    name = f"generated_{models}"
    project = root / name
    (project / "models").mkdir(parents=True, exist_ok=True)
    (project / "dbt_project.yml").write_text(
        textwrap.dedent(f"""
        name: {name}
        version: "1.0.0"
        config-version: 2
        profile: analytics
        models:
          {name}:
            +materialized: table
        """).lstrip()
    )
    staging = max(2, models // 10)
    rest = models - staging
    per_layer = [rest // (LAYERS - 1)] * (LAYERS - 1)
    per_layer[-1] += rest - sum(per_layer)
    layers = [[f"stg_{i:03d}" for i in range(staging)]]
    index = staging
    for layer, count in enumerate(per_layer, start=1):
        layers.append([f"l{layer}_m{index + i:03d}" for i in range(count)])
        index += count
    hubs = {model for layer in layers[:-1] for model in layer[:2]}
    yml = ["version: 2", "sources:"]
    for source in ("events", "accounts"):
        yml += [
            f"  - name: {source}",
            f"    schema: {schema}_raw",
            "    config:",
            "      loaded_at_field: loaded_at",
            "      freshness:",
            "        warn_after: {count: 12, period: hour}",
            "        error_after: {count: 24, period: hour}",
            "    tables:",
            f"      - name: {source}",
        ]
    yml.append("models:")
    for depth, layer in enumerate(layers):
        earlier = [model for lay in layers[:depth] for model in lay]
        for position, model in enumerate(layer):
            if depth == 0:
                source = ("events", "accounts")[position % 2]
                sql = f"select id, value, loaded_at from {{{{ source('{source}', '{source}') }}}}"
            else:
                parents = {rng.choice(layers[depth - 1])}
                parents.update(rng.choice(earlier) for _ in range(rng.choice([0, 1, 1, 2])))
                if rng.random() < 0.3:
                    parents.add(rng.choice(sorted(hubs & set(earlier))))
                first, *others = sorted(parents)
                total = " + ".join(f"p{i}.value" for i in range(len(parents)))
                sql = f"select p0.id, ({total}) % 1000 as value, p0.loaded_at from {{{{ ref('{first}') }}}} p0"
                sql += "".join(f" join {{{{ ref('{p}') }}}} p{i} using (id)" for i, p in enumerate(others, start=1))
            materialized = "view" if rng.random() < 0.25 else "table"
            (project / "models" / f"{model}.sql").write_text(
                f"{{{{ config(materialized='{materialized}') }}}}\n{sql}\n"
            )
            yml.append(f"  - name: {model}")
            if rng.random() < 0.8:
                yml += ["    columns:", "      - name: id", "        data_tests: [unique, not_null]"]
    (project / "models" / "schema.yml").write_text("\n".join(yml) + "\n")
    return project


def load_sources(database_url: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    raw = sql.Identifier(f"{schema}_raw")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(raw))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(raw))
        for table in ("events", "accounts"):
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {}.{} AS SELECT g AS id, g %% 97 AS value, now() AS loaded_at "
                    "FROM generate_series(1, %s) AS g"
                ).format(raw, sql.Identifier(table)),
                [SOURCE_ROWS],
            )


# ---------------------------------------------------------------------- one measured configuration


def dbt_env(database_url: str, project: Path, schema: str) -> dict[str, str]:
    """The DAG's settings for ``project``: its profile is the ``warehouse`` connection, models in ``schema``."""
    env = {key: value for key, value in os.environ.items() if key != "DBT_PROFILES_DIR"}
    return {**env, "DBT_PROJECT_PATH": str(project), "DBT_SCHEMA": schema}


def cli_profiles_dir(work: Path, database_url: str, schema: str) -> Path:
    """The command line's ``profiles.yml``: the same warehouse, schema and threads as the DAG's profile."""
    import yaml

    from include.transform.project import CONNECT_TIMEOUT, DEFAULT_THREADS

    parts = urlsplit(database_url)
    target = {
        "type": "postgres",
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "password": parts.password or "",
        "dbname": parts.path.lstrip("/"),
        "schema": schema,
        "threads": DEFAULT_THREADS,
        "connect_timeout": CONNECT_TIMEOUT,
    }
    directory = work / f"profiles_{schema}"
    directory.mkdir(parents=True, exist_ok=True)
    profile = {"target": "warehouse", "outputs": {"warehouse": target}}
    (directory / "profiles.yml").write_text(yaml.safe_dump({"analytics": profile}))
    return directory


def command_line_seconds(env: dict[str, str], project: Path, profiles_dir: Path) -> float:
    """The baseline: the same three dbt commands, one process each, as a shell script would run them.

    dbt keeps its partial-parse state in its target path: the command line gets one of its own
    (kept between rounds, as a developer's checkout keeps it), not the DAG's.
    """
    target = profiles_dir / "target"
    flags = [
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(profiles_dir),
        "--target-path",
        str(target),
        "--quiet",
    ]
    started = time.perf_counter()
    for command in (["source", "freshness"], ["build"], ["docs", "generate"]):
        subprocess.run([DBT, *command, *flags], env=env, check=command != ["source", "freshness"], capture_output=True)
    return time.perf_counter() - started


class Api:
    def __init__(self, url: str, password: str) -> None:
        import requests

        self.url = url
        self.session = requests.Session()
        token = self.session.post(f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=30)
        self.session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def get(self, path: str, **params):
        response = self.session.get(f"{self.url}/api/v2{path}", params=params, timeout=60)
        response.raise_for_status()
        return response.json()

    def runs(self, *states: str) -> list[dict]:
        return self.get("/dags/transform/dagRuns", state=list(states), limit=100)["dag_runs"]

    def wait_run(self, run_id: str, timeout: float = RUN_TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.get(f"/dags/transform/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(1)
        raise TimeoutError(f"transform run {run_id} did not finish within {timeout:.0f}s")


def _at(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def measured_run(api: Api, run: dict) -> dict:
    """Seconds from the run's start to its end, and the tail after the producer."""
    if run["state"] != "success":
        tis = api.get(f"/dags/transform/dagRuns/{run['dag_run_id']}/taskInstances", limit=100)["task_instances"]
        failed = sorted(t["task_id"] for t in tis if t["state"] not in ("success", "skipped"))
        raise SystemExit(f"transform run {run['dag_run_id']} ended {run['state']}: {failed[:10]}")
    start, end = _at(run["start_date"]), _at(run["end_date"])
    tail = None
    try:
        producer = api.get(f"/dags/transform/dagRuns/{run['dag_run_id']}/taskInstances/dbt.dbt_build")
        tail = end - _at(producer["end_date"])
    except Exception:  # local mode has no producer
        tail = None
    return {"seconds": end - start, "tail_s": tail}


def measure(configuration: dict, work: Path, repeat: int) -> dict:
    """Start the stack on one project and mode; time ``repeat`` runs, each next to a command-line baseline."""
    from devstack.stack import LocalStack
    from include.transform.manifest import build_manifest
    from include.transform.project import DbtProject

    env = configuration["env"]
    build_manifest(DbtProject.from_env(env))
    stack = LocalStack(
        work / f"stack_{configuration['name']}",
        configuration["database_url"],
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        port=int(os.environ.get("AIRFLOW_PORT", "8080")),
        # Only transform runs: the platform's other DAGs stay paused, so they take no CPU from it.
        extra_env={key: env[key] for key in ("DBT_PROJECT_PATH", "DBT_SCHEMA")}
        | {"DBT_EXECUTION_MODE": configuration["mode"], "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True"},
    )
    result = {"name": configuration["name"], "dag_s": [], "cli_s": [], "tail_s": [], "load": []}
    try:
        stack.up()
        api = Api(stack.url, stack.admin_password())
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not _dag_known(api):  # the dag-processor parses the DAG
            time.sleep(2)
        api.session.patch(
            f"{stack.url}/api/v2/dags/transform", json={"is_paused": False}, timeout=60
        ).raise_for_status()
        while time.monotonic() < deadline and not api.runs("queued", "running", "success", "failed"):
            time.sleep(1)
        # The first run is the scheduled one (unpausing starts it): a warm-up, or in local mode the run.
        first = api.wait_run(api.runs("queued", "running", "success", "failed")[0]["dag_run_id"])
        rounds = 1 if configuration["mode"] == "local" else repeat
        for number in range(rounds):
            load = os.getloadavg()[0]
            if configuration["mode"] == "local":
                run = first
            else:
                response = api.session.post(
                    f"{stack.url}/api/v2/dags/transform/dagRuns", json={"logical_date": None}, timeout=60
                )
                response.raise_for_status()
                run = api.wait_run(response.json()["dag_run_id"])
            timing = measured_run(api, run)
            cli = command_line_seconds(env, Path(env["DBT_PROJECT_PATH"]), configuration["profiles_dir"])
            result["dag_s"].append(timing["seconds"])
            result["tail_s"].append(timing["tail_s"])
            result["cli_s"].append(cli)
            result["load"].append(round((load + os.getloadavg()[0]) / 2, 2))
            print(
                f"  {configuration['name']} round {number + 1}: DAG {timing['seconds']:.1f}s, "
                f"command line {cli:.1f}s, tail {timing['tail_s'] if timing['tail_s'] is not None else '-'}, "
                f"load {result['load'][-1]}",
                flush=True,
            )
    finally:
        stack.down()
    dag, cli = statistics.median(result["dag_s"]), statistics.median(result["cli_s"])
    tails = [t for t in result["tail_s"] if t is not None]
    result.update(ratio=dag / cli, dag=dag, cli=cli, tail=max(tails) if tails else None)
    return result


def _dag_known(api: Api) -> bool:
    try:
        api.get("/dags/transform")
        return True
    except Exception:
        return False


# ---------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2, help="measured watcher runs per size (default 2)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--local-models", type=int, default=LOCAL_MODE_MODELS, help="0: no local-mode reference")
    args = parser.parse_args()

    import psycopg

    from include.migrations import apply_migrations

    def migrate(url: str) -> None:
        with psycopg.connect(url) as conn:
            apply_migrations(conn)

    admin = admin_database_url()
    database_url = create_scratch_database(admin, "bench_transform", migrate)
    work = Path(tempfile.mkdtemp(prefix="bench-transform-"))
    results = {}
    try:
        configurations = []
        for models in sorted(set(args.sizes) | ({args.local_models} if args.local_models else set())):
            schema = f"bench_{models}"
            project = generate_project(work, models, schema)
            load_sources(database_url, schema)
            common = {
                "env": dbt_env(database_url, project, schema),
                "database_url": database_url,
                "profiles_dir": cli_profiles_dir(work, database_url, schema),
            }
            if models in args.sizes:
                configurations.append({"name": f"watcher_{models}", "mode": "watcher", **common})
            if models == args.local_models:
                configurations.append({"name": f"local_{models}", "mode": "local", **common})
        for configuration in configurations:
            print(f"== {configuration['name']}", flush=True)
            results[configuration["name"]] = measure(configuration, work, args.repeat)
    finally:
        drop_database(admin, database_url)

    rows = [
        [
            name,
            f"{r['dag']:.1f} s",
            f"{r['cli']:.1f} s",
            f"{r['ratio']:.2f}",
            "-" if r["tail"] is None else f"{r['tail']:.1f} s",
            r["load"],
        ]
        for name, r in results.items()
    ]
    print_table(["configuration", "DAG run (median)", "command line", "ratio", "tail (max)", "load avg"], rows)
    largest = max(args.sizes)
    ratio = results[f"watcher_{largest}"]["ratio"]
    tail = results[f"watcher_{largest}"]["tail"]
    local = results.get(f"local_{args.local_models}")
    finish(
        "transform_runtime",
        ratio,
        TARGET_RATIO,
        checks={"tail_s": (tail if tail is not None else float("inf"), TARGET_TAIL_S)},
        models=largest,
        ratio_by_models={str(m): round(results[f"watcher_{m}"]["ratio"], 3) for m in args.sizes},
        local_mode_ratio=round(local["ratio"], 3) if local else None,
        local_mode_models=args.local_models if local else None,
        dag_s={name: [round(s, 1) for s in r["dag_s"]] for name, r in results.items()},
        cli_s={name: [round(s, 1) for s in r["cli_s"]] for name, r in results.items()},
        tails_s={name: [None if t is None else round(t, 2) for t in r["tail_s"]] for name, r in results.items()},
        load_avg={name: r["load"] for name, r in results.items()},
    )


if __name__ == "__main__":
    main()
