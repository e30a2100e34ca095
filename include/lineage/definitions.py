"""Keep what each alert and report reads up to date in its row (``reads``, ``reads_origin``, ``reads_note``).

Run by the alerts DAG's ``sync_definitions`` and the reports DAG's planning: every enabled
definition whose SQL or declared relations changed since, whose names were not all found, or whose
relations were worked out more than :data:`READS_MAX_AGE_SECONDS` ago, is worked out again on one
reader connection (:func:`include.lineage.relations.relations_read`). A definition changed
meanwhile keeps its row (the next run works it out).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from include.lineage.relations import relations_read
from include.sql import load_sql

log = logging.getLogger(__name__)

#: Relations found from SQL are worked out again after this long (a view it reads may have changed).
READS_MAX_AGE_SECONDS = 3600
#: The tables of definitions that read relations.
DEFINITION_TABLES = ("analytics_alerts", "analytics_reports")


@dataclass
class ReadsRefresh:
    """What :func:`refresh_reads` did: definitions worked out, and those whose SQL could not be read."""

    refreshed: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"refreshed": len(self.refreshed), "unreadable": self.unreadable}


def refresh_reads(hook: Any, reader: Any, table: str, *, statement_timeout: float = 60) -> ReadsRefresh:
    """Work out again what the stale definitions of ``table`` read (``hook``: platform; ``reader``: reader role)."""
    from psycopg import sql
    from psycopg.rows import dict_row

    if table not in DEFINITION_TABLES:
        raise ValueError(f"{table!r} is not a table of definitions; expected one of {DEFINITION_TABLES}")
    identifier = sql.Identifier(table)
    result = ReadsRefresh()
    with hook.transaction(statement_timeout=statement_timeout) as conn, conn.cursor(row_factory=dict_row) as cur:
        query = sql.SQL(load_sql("lineage/select_stale_reads.sql")).format(table=identifier)
        stale = cur.execute(query, {"max_age": READS_MAX_AGE_SECONDS}).fetchall()
    if not stale:
        return result
    found = {}
    with reader.read_only_transaction(statement_timeout=statement_timeout) as conn:
        for row in stale:
            found[row["id"]] = relations_read(conn, row["sql"] or "", row["declared_reads"])
    update = sql.SQL(load_sql("lineage/update_reads.sql")).format(table=identifier)
    with hook.transaction(statement_timeout=statement_timeout) as conn:
        for row in stale:
            reads = found[row["id"]]
            conn.execute(update, {"id": row["id"], "reads_hash": row["reads_hash"], **reads.as_row()})
            result.refreshed.append(row["name"])
            if reads.origin == "error":
                result.unreadable.append(f"{row['name']}: {reads.note}")
                log.warning("%s %s: %s; data changes do not trigger it", table, row["name"], reads.note)
            else:
                log.info(
                    "%s %s reads %s%s",
                    table,
                    row["name"],
                    ", ".join(reads.relations) or "nothing known",
                    f" ({reads.note})" if reads.note else "",
                )
    return result
