"""Threshold alerts without writing SQL, built from a catalog object (the old worker's "create threshold alerts").

* **Row count drop**: "row count of ``schema.table`` drops by more than N % since the previous check".
* **Freshness**: "newest ``column`` in ``schema.table`` older than a duration" (an empty table counts
  as stale).

The table and column are checked against ``pg_catalog`` (the column must be a date or timestamp)
and quoted with :mod:`psycopg.sql`, so no user text is ever pasted into SQL. Used by the alerts
DAG's trigger form and by ``python -m include alerts create-...``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from include.alerts.conditions import format_number
from include.alerts.definitions import (
    AlertDefinition,
    DefinitionError,
    InvalidDefinition,
    parse_duration,
    validate_single,
)
from include.alerts.settings import AlertSettings
from include.sql import load_sql

KINDS = ("row_count_drop", "freshness")


def split_table_name(table: str) -> tuple[str, str]:
    """``schema.table`` (quotes allowed: ``"My Schema"."Orders"``) -> (schema, table); no schema = public."""
    text = (table or "").strip()
    parts = re.findall(r'"((?:[^"]|"")+)"|([^."]+)', text)
    names = [quoted.replace('""', '"') if quoted else bare.strip() for quoted, bare in parts]
    if not text or len(names) not in (1, 2) or not all(names):
        raise ValueError(f"table {table!r} must be written as schema.table")
    return ("public", names[0]) if len(names) == 1 else (names[0], names[1])


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:128] or "catalog_alert"


def _fail(source: str, name: str | None, field: str, message: str) -> InvalidDefinition:
    return InvalidDefinition([DefinitionError(source, name, field, message)])


def resolve_table(conn: Any, table: str, source: str = "cli", alert_name: str | None = None) -> tuple[str, str]:
    """The (schema, name) of an existing table, view or materialized view; the error suggests close names."""
    try:
        schema, name = split_table_name(table)
    except ValueError as error:
        raise _fail(source, alert_name, "table", str(error)) from None
    row = conn.execute(load_sql("alerts/resolve_relation.sql"), {"schema": schema, "name": name}).fetchone()
    if row is None:
        close = [r[0] for r in conn.execute(load_sql("alerts/suggest_relations.sql"), {"name": name})]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise _fail(source, alert_name, "table", f"no table or view {schema}.{name} in the warehouse{hint}")
    return row[0], row[1]


def resolve_time_column(conn: Any, schema: str, name: str, column: str, source: str, alert_name: str | None) -> str:
    if not column:
        raise _fail(source, alert_name, "timestamp_column", "a freshness alert needs a timestamp column")
    row = conn.execute(
        load_sql("alerts/resolve_column.sql"), {"schema": schema, "name": name, "column": column}
    ).fetchone()
    if row is None:
        raise _fail(source, alert_name, "timestamp_column", f"{schema}.{name} has no column {column!r}")
    if not row[2]:
        raise _fail(
            source, alert_name, "timestamp_column", f"column {column!r} is {row[1]}; expected a date or timestamp"
        )
    return row[0]


def row_count_sql(conn: Any, schema: str, name: str) -> str:
    from psycopg import sql

    return sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(name)).as_string(conn)


def freshness_sql(conn: Any, schema: str, name: str, column: str) -> str:
    """Age in seconds of the newest value of ``column`` (an empty table is as old as the epoch)."""
    from psycopg import sql

    return (
        sql.SQL(
            "SELECT EXTRACT(EPOCH FROM (now() - COALESCE(max({column})::timestamptz, 'epoch'::timestamptz)))::float8 "
            "FROM {schema}.{name}"
        )
        .format(column=sql.Identifier(column), schema=sql.Identifier(schema), name=sql.Identifier(name))
        .as_string(conn)
    )


def channels_from_options(
    slack: bool | str | None = None, emails: Sequence[str] = (), webhook: bool | str | None = None
) -> list[dict[str, Any]]:
    """Channel definitions from simple options (True = the default connection, a string = a connection id)."""
    channels: list[dict[str, Any]] = []
    if slack:
        channels.append({"type": "slack", **({"connection": slack} if isinstance(slack, str) else {})})
    if emails:
        channels.append({"type": "email", "to": list(emails)})
    if webhook:
        channels.append({"type": "webhook", **({"connection": webhook} if isinstance(webhook, str) else {})})
    return channels


def build_catalog_alert(
    conn: Any,
    kind: str,
    table: str,
    *,
    name: str | None = None,
    drop_percent: float | None = None,
    timestamp_column: str | None = None,
    max_age: Any = None,
    options: Mapping[str, Any] | None = None,
    source: str = "cli",
    settings: AlertSettings | None = None,
) -> AlertDefinition:
    """A validated definition for a catalog threshold alert (``kind``: row_count_drop or freshness).

    ``options`` are further alert fields (severity, owner, channels, consecutive_checks, rearm, ...).
    """
    if kind not in KINDS:
        raise _fail(source, name, "kind", f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    schema, relation = resolve_table(conn, table, source, name)
    qualified = f"{schema}.{relation}"
    alert: dict[str, Any] = {k: v for k, v in (options or {}).items() if v not in (None, "", [])}
    if kind == "row_count_drop":
        if drop_percent is None or float(drop_percent) <= 0:
            raise _fail(source, name, "drop_percent", "a row count alert needs a drop percentage above 0")
        alert.update(
            name=name or _safe_name(f"{schema}_{relation}_row_count_drop"),
            sql=row_count_sql(conn, schema, relation),
            condition="drop_pct",
            threshold=float(drop_percent),
        )
        alert.setdefault("description", f"Row count of {qualified} drops by more than {format_number(drop_percent)} %")
    else:
        column = resolve_time_column(conn, schema, relation, timestamp_column or "", source, name)
        try:
            seconds = parse_duration(max_age)
        except (TypeError, ValueError) as error:
            raise _fail(source, name, "max_age", str(error)) from None
        alert.update(
            name=name or _safe_name(f"{schema}_{relation}_{column}_freshness"),
            sql=freshness_sql(conn, schema, relation, column),
            condition=">",
            threshold=seconds,
        )
        alert.setdefault("description", f"Newest {column} in {qualified} older than {max_age}")
    return validate_single(alert, source, settings)


def create_catalog_alert(hook: Any, definition: AlertDefinition, *, replace_existing: bool = False) -> int:
    """Save a catalog alert (``source = 'catalog'``); an existing name is an error unless replacing."""
    import psycopg

    from include.alerts.sync import save_definition

    with hook.transaction(statement_timeout=30) as conn:
        try:
            with conn.transaction():
                return save_definition(conn, definition, "catalog", None)
        except psycopg.errors.UniqueViolation:
            if not replace_existing:
                raise _fail(
                    "catalog", definition.name, "name", "an alert with this name already exists; choose another name"
                ) from None
        params = {**definition.row(), "source": "catalog", "source_file": None}
        return conn.execute(load_sql("alerts/update_definition.sql"), params).fetchone()[0]
