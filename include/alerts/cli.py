"""``python -m include alerts ...``: validate, sync, inspect and create alerts without writing Python.

The commands reach the warehouse through the same hooks and Airflow connections as the DAG
(``warehouse``, behind the ``database`` circuit breaker); ``check`` runs the alert's SQL like the DAG
does, on the reader connection ``warehouse_reader`` (read-only, described first).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _hook():
    from hooks.warehouse import WarehouseHook

    return WarehouseHook(application_name="alerts-cli")


def _reader():
    from include.security.reader import reader_hook

    return reader_hook("alerts-cli")


def _settings(args: argparse.Namespace):
    from dataclasses import replace

    from include.alerts.settings import AlertSettings

    settings = AlertSettings.from_env()
    return replace(settings, definitions_dir=Path(args.dir)) if getattr(args, "dir", None) else settings


def _validate(args: argparse.Namespace) -> int:
    from include.alerts.definitions import connection_problems, load_definitions

    settings = _settings(args)
    loaded = load_definitions(settings.definitions_dir, settings)
    errors = list(loaded.errors)
    if args.connections:
        errors += connection_problems(loaded.definitions)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    where = settings.definitions_dir
    checked = ", connections checked" if args.connections else ""
    print(f"{len(loaded.definitions)} valid alert definitions, {len(errors)} errors in {where}{checked}")
    return 1 if errors else 0


def _sync(args: argparse.Namespace) -> int:
    from include.alerts.sync import sync_definitions

    settings = _settings(args)
    report = sync_definitions(_hook(), settings, settings.definitions_dir, reader=_reader())
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    print(json.dumps(report.as_dict(), indent=2))
    return 1 if report.errors else 0


def _list(args: argparse.Namespace) -> int:
    from psycopg.rows import dict_row

    from include.sql import load_sql

    with _hook().transaction(statement_timeout=30) as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(load_sql("alerts/list_alerts.sql")).fetchall()
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    print(f"{'NAME':40} {'SOURCE':8} {'ON':3} {'STATE':10} {'VALUE':>12}  {'SCHEDULE':16} LAST CHECK / ERROR")
    for row in rows:
        value = "-" if row["last_value"] is None else f"{row['last_value']:g}"
        checked = row["last_evaluated_at"].isoformat(timespec="seconds") if row["last_evaluated_at"] else "never"
        tail = f"{checked}  {row['last_error']}" if row["last_error"] else checked
        enabled = "yes" if row["enabled"] else "no"
        print(
            f"{row['name']:40} {row['source']:8} {enabled:3} {row['state']:10} {value:>12}  {row['schedule']:16} {tail}"
        )
        print(f"{'':40}   reads: {describe_reads(row)}")
    return 0


def describe_reads(row: dict[str, Any]) -> str:
    """What an alert reads, for people: the relations, how they were found, what was not found."""
    origin = row.get("reads_origin")
    if origin is None:
        return "not worked out yet (the next sync does it)"
    relations = ", ".join(row.get("reads") or []) or "nothing known"
    how = {"declared": "declared", "sql": "from its SQL", "error": "SQL not readable"}[origin]
    note = f"; {row['reads_note']}" if row.get("reads_note") else ""
    return f"{relations} ({how}{note})"


def _check(args: argparse.Namespace) -> int:
    """Run one alert's SQL now and show what the condition says; changes nothing."""
    from psycopg.rows import dict_row

    from include.alerts.conditions import ConditionError, condition_met, describe_condition, normalize_condition
    from include.alerts.evaluate import run_alert_query
    from include.sql import load_sql

    hook = _hook()
    with hook.transaction(statement_timeout=30) as conn, conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(load_sql("alerts/select_alert_by_name.sql"), {"name": args.name}).fetchone()
    if row is None:
        print(f"error: no alert named {args.name!r}", file=sys.stderr)
        return 1
    result = run_alert_query(_reader(), row["sql"], float(row["timeout_seconds"]))
    print(f"alert {row['name']} (state {row['state']}), query took {result.duration_ms:.0f} ms")
    if result.error or result.value is None:
        print(f"error: {result.error or 'the query returned no value'}")
        return 1
    condition = normalize_condition(row["condition"])
    try:
        met = condition_met(condition, row["threshold"], result.value, previous=row["last_value"])
    except ConditionError as error:
        print(f"value {result.value.text!r}: {error}")
        return 1
    verdict = "MET (would fire)" if met else "not met"
    print(f"value {result.value.text}: {describe_condition(condition, row['threshold'])}: {verdict}")
    return 0


def _create(args: argparse.Namespace) -> int:
    from include.alerts.builder import build_catalog_alert, channels_from_options, create_catalog_alert
    from include.alerts.definitions import InvalidDefinition

    hook = _hook()
    options: dict[str, Any] = {
        "severity": args.severity,
        "owner": args.owner,
        "consecutive_checks": args.consecutive_checks,
        "rearm": args.rearm,
        "check_interval": args.check_interval,
        "channels": channels_from_options(slack=args.slack, emails=args.email or [], webhook=args.webhook),
    }
    kind = "row_count_drop" if args.action == "create-row-count" else "freshness"
    try:
        with hook.transaction(statement_timeout=30) as conn:
            definition = build_catalog_alert(
                conn,
                kind,
                args.table,
                name=args.name,
                drop_percent=getattr(args, "drop_pct", None),
                timestamp_column=getattr(args, "column", None),
                max_age=getattr(args, "max_age", None),
                options=options,
                source="cli",
            )
        alert_id = create_catalog_alert(hook, definition, replace_existing=args.replace)
    except InvalidDefinition as error:
        for problem in error.errors:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    print(f"created alert {definition.name!r} (id {alert_id}): {definition.description}")
    print(f"  sql: {definition.sql}")
    print(f"  condition: {definition.condition} {definition.threshold:g}")
    return 0


def _outbox(args: argparse.Namespace) -> int:
    from include.sql import load_sql

    with _hook().transaction(statement_timeout=30) as conn:
        counts = dict(conn.execute(load_sql("alerts/count_notifications.sql")).fetchall())
    print(json.dumps(counts, indent=2) if args.json else "  ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    return 0


def _deliver(args: argparse.Namespace) -> int:
    from include.alerts.outbox import deliver_pending

    print(json.dumps(deliver_pending(_hook()).as_dict(), indent=2))
    return 0


def add_parser(sub: Any) -> None:
    """Register ``alerts`` and its actions on the top-level sub-parsers."""
    alerts = sub.add_parser("alerts", help="validate, sync, list, check and create alerts")
    actions = alerts.add_subparsers(dest="action", required=True)
    validate = actions.add_parser("validate", help="check the YAML definitions (no database needed)")
    validate.add_argument("--dir", help="definitions folder (default: ALERT_DEFINITIONS_DIR, else the project's)")
    validate.add_argument(
        "--connections",
        action="store_true",
        help="also check that every channel's Airflow connection exists and fits the channel "
        "(needs Airflow's connections: AIRFLOW_CONN_* variables, a secrets backend or Airflow's database)",
    )
    validate.set_defaults(func=_validate)
    sync = actions.add_parser("sync", help="sync the YAML definitions into analytics_alerts")
    sync.add_argument("--dir", help="definitions folder")
    sync.set_defaults(func=_sync)
    listing = actions.add_parser("list", help="every alert with its state")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_list)
    check = actions.add_parser("check", help="run one alert's SQL now (read-only) and show the verdict")
    check.add_argument("name")
    check.set_defaults(func=_check)
    outbox = actions.add_parser("outbox", help="notifications by status")
    outbox.add_argument("--json", action="store_true")
    outbox.set_defaults(func=_outbox)
    actions.add_parser("deliver", help="send pending notifications now").set_defaults(func=_deliver)

    for action, help_text in (
        ("create-row-count", "alert when a table's row count drops by more than N %"),
        ("create-freshness", "alert when the newest timestamp in a table is older than a duration"),
    ):
        create = actions.add_parser(action, help=help_text)
        create.add_argument("--table", required=True, help="schema.table (a table, view or materialized view)")
        if action == "create-row-count":
            create.add_argument("--drop-pct", type=float, required=True, help="fire when the count drops by more")
        else:
            create.add_argument("--column", required=True, help="a date or timestamp column")
            create.add_argument("--max-age", required=True, help="e.g. 90m, 2h, 1d")
        create.add_argument("--name", help="alert name (default: derived from the table)")
        create.add_argument("--severity", choices=["info", "warning", "critical"], default="warning")
        create.add_argument("--owner", help="who is told about errors (an email address)")
        create.add_argument("--consecutive-checks", type=int, default=1)
        create.add_argument("--rearm", help="repeat while firing, e.g. 1h")
        create.add_argument("--check-interval", help="check at most this often, e.g. 15m")
        create.add_argument("--slack", nargs="?", const=True, metavar="CONN", help="notify Slack (connection)")
        create.add_argument("--email", action="append", metavar="ADDRESS", help="notify this address (repeatable)")
        create.add_argument("--webhook", nargs="?", const=True, metavar="CONN", help="notify the webhook (connection)")
        create.add_argument("--replace", action="store_true", help="replace an alert of the same name")
        create.set_defaults(func=_create)
