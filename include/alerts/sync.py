"""Alerts as code: sync the YAML definitions into ``analytics_alerts``.

Valid definitions are created or updated (only when they changed); a definition removed from
the files is disabled (its history stays). A bad file or alert is reported with its file, alert
and field, recorded in ``analytics_refresh_log`` (job ``alerts.sync_definitions``), and skipped:
the other alerts still sync, and the alerts already in the table from a file that cannot be
read are left as they were. Alerts created in the table or from the catalog are never touched.
Then what every alert reads is worked out again where it is stale
(:func:`include.lineage.definitions.refresh_reads`, on the reader connection).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.alerts.definitions import AlertDefinition, DefinitionError, connection_problems, load_definitions
from include.alerts.settings import AlertSettings
from include.sql import load_sql
from observability import metrics

if TYPE_CHECKING:
    from hooks.warehouse import WarehouseHook, WarehouseReaderHook

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    errors: list[DefinitionError] = field(default_factory=list)
    #: errors the previous sync did not report (the DAG alerts on these only, not every 5 minutes)
    new_errors: list[str] = field(default_factory=list)
    #: channels whose Airflow connection does not exist or does not fit: their notifications fail at once
    connection_problems: list[str] = field(default_factory=list)
    #: what working out the alerts' relations did (include.lineage.definitions.ReadsRefresh.as_dict)
    reads: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": len(self.unchanged),
            "disabled": self.disabled,
            "errors": [str(e) for e in self.errors],
            "new_errors": self.new_errors,
            "connection_problems": self.connection_problems,
            "reads": self.reads,
        }


def save_definition(conn: Any, definition: AlertDefinition, source: str, source_file: str | None) -> int:
    """Insert a new alert (``source``: yaml / catalog / table); return its id."""
    params = {**definition.row(), "source": source, "source_file": source_file}
    return conn.execute(load_sql("alerts/insert_definition.sql"), params).fetchone()[0]


def sync_definitions(
    hook: WarehouseHook | None = None,
    settings: AlertSettings | None = None,
    directory: Path | None = None,
    dag_run_id: str | None = None,
    reader: WarehouseReaderHook | None = None,
) -> SyncReport:
    """Read every YAML file under ``directory`` and bring the table in line with it.

    ``reader``: the reader connection the alerts' relations are resolved on (default
    ``warehouse_reader``); when it is refused, the relations stay as they were (the error is logged).
    """
    from psycopg.rows import dict_row

    from hooks.warehouse import WarehouseHook

    hook = hook or WarehouseHook(application_name="alerts-sync")
    settings = settings or AlertSettings.from_env()
    directory = directory or settings.definitions_dir
    started = datetime.now(UTC)
    loaded = load_definitions(directory, settings)
    report = SyncReport(errors=list(loaded.errors))
    report.connection_problems = [str(p) for p in connection_problems(loaded.definitions)]
    with hook.transaction(statement_timeout=60, lock_timeout=10) as conn:
        with conn.cursor(row_factory=dict_row) as cur:
            existing = {row["name"]: row for row in cur.execute(load_sql("alerts/select_definitions.sql"))}
        for source_file, definition in loaded.definitions:
            _save_yaml_definition(conn, definition, source_file, existing.get(definition.name), report)
        keep = [d.name for _, d in loaded.definitions] + sorted(loaded.failed_names)
        rows = conn.execute(
            load_sql("alerts/disable_removed.sql"), {"keep": keep, "unreadable": sorted(loaded.unreadable_files)}
        ).fetchall()
        report.disabled = [name for (name,) in rows]
        previous = conn.execute(load_sql("alerts/select_last_sync_errors.sql")).fetchone()
        known = set(previous[0] or []) if previous else set()
        report.new_errors = [str(e) for e in report.errors if str(e) not in known]
        conn.execute(
            load_sql("alerts/insert_sync_log.sql"),
            {
                "target": str(directory),
                "status": "failed" if report.errors else "success",
                "started_at": started,
                "details": json.dumps(report.as_dict()),
                "error": "\n".join(str(e) for e in report.errors) or None,
                "dag_run_id": dag_run_id,
            },
        )
    report.reads = _refresh_reads(hook, reader)
    for error in report.errors:
        log.error("alert definition error: %s", error)
    for problem in report.connection_problems:
        log.warning("alert channel without a usable connection (its notifications fail at once): %s", problem)
    metrics.gauge("alerts.definition_errors", len(report.errors))
    log.info(
        "alert definitions: %d created, %d updated, %d unchanged, %d disabled, %d errors",
        len(report.created),
        len(report.updated),
        len(report.unchanged),
        len(report.disabled),
        len(report.errors),
    )
    return report


def _save_yaml_definition(
    conn: Any, definition: AlertDefinition, source_file: str, current: dict[str, Any] | None, report: SyncReport
) -> None:
    """Create, update or leave one alert of a YAML file (``current``: its row, if any); errors go in ``report``."""
    import psycopg

    try:
        with conn.transaction():  # a savepoint: one failing alert does not undo the others
            if current is None:
                save_definition(conn, definition, "yaml", source_file)
                report.created.append(definition.name)
            elif current["source"] != "yaml":
                report.errors.append(
                    DefinitionError(
                        source_file,
                        definition.name,
                        "name",
                        f"an alert with this name already exists (created from the {current['source']}); "
                        "rename one of them",
                    )
                )
            elif current["definition_hash"] == definition.definition_hash() and current["source_file"] == source_file:
                report.unchanged.append(definition.name)
            else:
                params = {**definition.row(), "source": "yaml", "source_file": source_file}
                conn.execute(load_sql("alerts/update_definition.sql"), params)
                report.updated.append(definition.name)
    except psycopg.Error as error:
        message = f"could not be saved: {error}".strip()
        report.errors.append(DefinitionError(source_file, definition.name, None, message))


def _refresh_reads(hook: WarehouseHook, reader: WarehouseReaderHook | None) -> dict[str, Any]:
    from hooks.warehouse import ReaderConnectionRefused
    from include.lineage.definitions import refresh_reads
    from include.security.reader import reader_hook

    try:
        return refresh_reads(hook, reader or reader_hook("alerts-sync"), "analytics_alerts").as_dict()
    except ReaderConnectionRefused as refused:
        log.error("the relations alerts read were not worked out: %s", refused)
        return {"error": str(refused)}
