"""Operator commands of the platform, no Python needed: ``python -m include <command>``.

The commands reach the warehouse and Redis through the same hooks and Airflow connections as the
tasks (``warehouse``, ``warehouse_reader``, ``circuit_breaker_redis``; see
:func:`include.settings.airflow_connections`); only ``roles`` connects as an administrator
(``DATABASE_URL``), to provision the roles those connections log in as.

python -m include migrate                    apply the platform schema migrations (connection warehouse)
python -m include roles setup|sql|check      the platform's role and the reader role (docs/security.md)
python -m include alerts validate|sync|list|check|outbox|deliver|create-row-count|create-freshness
python -m include breakers status [--json]   every circuit breaker and target (connection circuit_breaker_redis)
python -m include breakers reset NAME [--target TARGET]
python -m include reports runs [--report NAME] [--limit N]   latest report runs, deliveries, errors
python -m include dbt manifest               build the dbt manifest the transform DAG renders (DBT_PROJECT_PATH)
python -m include dbt load-demo              load the demo source data of the bundled dbt project (connection warehouse)
python -m include registry [--check]         write docs/task-registry.md from the DAGs (--check: only compare)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys


def _migrate(args: argparse.Namespace) -> int:
    from hooks.warehouse import WarehouseHook
    from include.migrations import apply_migrations

    conn = WarehouseHook(application_name="platform-migrate").get_conn()
    try:
        applied = apply_migrations(conn)
    finally:
        conn.close()
    print(f"applied migrations: {applied}" if applied else "schema is up to date")
    return 0


def _breakers(args: argparse.Namespace) -> int:
    from hooks.circuit_breaker import DEFAULT_BREAKERS, all_statuses, breaker_config, reset_breakers

    if args.action == "reset":
        targets = reset_breakers(args.name, args.target)
        if not targets:
            print(f"no targets known for breaker {args.name!r}", file=sys.stderr)
            return 1
        for target in targets:
            print(f"reset {args.name}/{target} -> closed")
        return 0
    statuses = all_statuses()
    if args.json:
        print(json.dumps([s.as_dict() for s in statuses], indent=2))
        return 0
    print("configured breakers:")
    for name in sorted(DEFAULT_BREAKERS):
        config = breaker_config(name)
        print(
            f"  {name:13} trips after {config.failure_threshold} failures, "
            f"half-opens after {config.recovery_timeout:g}s, {config.half_open_max_calls} trial call(s)"
        )
    print()
    header = f"{'BREAKER':13} {'TARGET':28} {'STATE':10} {'FAILURES':>8}  {'OPENED AT':25} {'RETRY AFTER':>11}"
    print(header)
    for s in statuses:
        opened = s.opened_at.isoformat(timespec="seconds") if s.opened_at else "-"
        retry = f"{s.retry_after:.0f}s" if s.retry_after is not None else "-"
        print(f"{s.breaker:13} {s.target:28} {s.state:10} {s.failures:>8}  {opened:25} {retry:>11}")
    if not statuses:
        print("(no breaker has been used yet)")
    return 0


def _reports(args: argparse.Namespace) -> int:
    from psycopg.rows import dict_row

    from hooks.warehouse import WarehouseHook
    from include.sql import load_sql

    parameters = {"report": args.report, "limit": args.limit}
    hook = WarehouseHook(application_name="reports-cli")
    with hook.transaction(statement_timeout=30) as conn, conn.cursor(row_factory=dict_row) as cur:
        runs = cur.execute(load_sql("reports/select_recent_runs.sql"), parameters).fetchall()
    if args.json:
        print(json.dumps(runs, indent=2, default=str))
        return 0
    print(f"{'RUN':>6} {'REPORT':24} {'TRIGGER':9} {'SLOT (UTC)':16} {'STATUS':10} {'ROWS':>9}  DELIVERIES")
    for run in runs:
        rows = "-" if run["rows"] is None else str(run["rows"])
        slot = f"{run['slot']:%Y-%m-%d %H:%M}"
        name = run["report_name"] + (f" / {run['audience']}" if run["audience"] else "")
        print(
            f"{run['id']:>6} {name[:24]:24} {run['trigger']:9} {slot:16} {run['status']:10} "
            f"{rows:>9}  {run['deliveries']}"
        )
        for error in (run["error"], run["delivery_errors"]):
            if error:
                print(f"{'':7}error: {error}")
    if not runs:
        print("(no report runs yet)")
    return 0


def _dbt(args: argparse.Namespace) -> int:
    from include.transform.project import DbtProject

    if args.action == "manifest":
        from include.transform.manifest import build_manifest

        print(f"dbt manifest written to {build_manifest(DbtProject.from_env())}")
        return 0
    from hooks.warehouse import WarehouseHook
    from include.transform.demo_data import load_demo_data

    conn = WarehouseHook(application_name="dbt-load-demo").get_conn()
    try:
        load_demo_data(conn)  # logs the row counts
    finally:
        conn.close()
    return 0


def _registry(args: argparse.Namespace) -> int:
    from include.registry.document import COMMAND, REGISTRY_PATH, load_dags, render, write

    if args.check:
        current = REGISTRY_PATH.read_text() if REGISTRY_PATH.exists() else ""
        if render(load_dags()) != current:
            print(f"{REGISTRY_PATH.name} is out of date: run `{COMMAND}` and commit it", file=sys.stderr)
            return 1
        print(f"{REGISTRY_PATH.name} is up to date")
        return 0
    changed = write()
    print(f"{REGISTRY_PATH} {'written' if changed else 'already up to date'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m include", description="Analytics platform commands")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the platform schema migrations").set_defaults(func=_migrate)
    from include.alerts.cli import add_parser as add_alerts_parser  # python -m include alerts ...

    add_alerts_parser(sub)
    from include.security.roles import add_parser as add_roles_parser  # python -m include roles ...

    add_roles_parser(sub)
    breakers = sub.add_parser("breakers", help="see or reset circuit breakers")
    actions = breakers.add_subparsers(dest="action", required=True)
    status = actions.add_parser("status", help="state of every breaker and target")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    reset = actions.add_parser("reset", help="force a breaker closed")
    reset.add_argument("name", help="breaker name, e.g. database")
    reset.add_argument("--target", help="only this target (default: every target of the breaker)")
    breakers.set_defaults(func=_breakers)
    reports = sub.add_parser("reports", help="report runs and their deliveries")
    report_actions = reports.add_subparsers(dest="action", required=True)
    recent = report_actions.add_parser("runs", help="the latest report runs, their deliveries and errors")
    recent.add_argument("--report", help="only runs of this report (name)")
    recent.add_argument("--limit", type=int, default=20)
    recent.add_argument("--json", action="store_true", help="machine-readable output")
    reports.set_defaults(func=_reports)
    dbt = sub.add_parser("dbt", help="the dbt project of the transform DAG")
    dbt.add_argument("action", choices=["manifest", "load-demo"], help="build the manifest, or load the demo data")
    dbt.set_defaults(func=_dbt)
    registry = sub.add_parser("registry", help="write docs/task-registry.md from the DAGs")
    registry.add_argument("--check", action="store_true", help="only check that the committed file is current")
    registry.set_defaults(func=_registry)
    return parser


def main(argv: list[str] | None = None) -> int:
    from include.settings import airflow_connections

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    with airflow_connections():
        return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
