"""Data-driven report schedules: on a change of what a report reads, or a cron slot that waits for its data.

A report's ``schedule`` is a cron expression (its clock) or ``on_change``
(:data:`include.reports.definitions.ON_CHANGE`):

* ``on_change``: one run per ``reports`` DAG run that asset events of a relation it reads
  triggered (several relations changing in one dbt build give one run).
* a cron expression with ``wait_for_data``: a slot ("06:00") is generated once every relation it
  reads that the platform builds (those it has seen change) changed after the previous slot ("not
  before today's data arrived"); at the **data wait limit** (``data_wait_limit_seconds`` after the
  slot, default :data:`DEFAULT_DATA_WAIT_LIMIT_SECONDS`) it goes out anyway, with a note saying
  what had not changed. (Not to be confused with a delivery deadline: this limit is about the
  data a report waits for, before it is generated.)

Every run of the DAG that asset events triggered records, on the rows of the reports that read
the relations, when each changed (``analytics_reports.reads_changed_at``): that is what a waiting
slot is checked against, here and in later runs (the clock runs every 15 minutes, so a slot that
reaches its limit goes out on the next one).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from include.lineage.triggers import RelationChange, affecting
from include.sql import load_sql

#: How long after its slot a ``wait_for_data`` report waits for its data when it does not say.
DEFAULT_DATA_WAIT_LIMIT_SECONDS = 3 * 3600


@dataclass(frozen=True)
class DataWait:
    """What a ``wait_for_data`` slot does now: ``go`` (data arrived, or the limit passed with ``note``) or wait."""

    go: bool
    reason: str
    #: the changes that brought its data (``RelationChange.as_dict`` form)
    triggered_by: tuple[dict[str, Any], ...] = ()
    #: set when it goes out at the data wait limit without fresh data
    note: str | None = None


def record_changes(conn: Any, changes: Sequence[RelationChange]) -> int:
    """Note on every report that reads a changed relation when it changed; return how many reports."""
    latest: dict[str, str] = {}
    for change in changes:
        latest[change.relation.key] = max(latest.get(change.relation.key, ""), change.timestamp)
    if not latest:
        return 0
    cursor = conn.execute(load_sql("reports/record_read_changes.sql"), {"changed": json.dumps(latest)})
    return cursor.rowcount


def changed_reports(conn: Any, changes: Sequence[RelationChange]) -> list[dict[str, Any]]:
    """The enabled ``on_change`` reports that read a relation among ``changes``."""
    from psycopg.rows import dict_row

    keys = sorted({change.relation.key for change in changes})
    if not keys:
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(load_sql("reports/select_changed_reports.sql"), {"changed": keys}).fetchall()


def why(changes: Sequence[RelationChange], reads: Sequence[str]) -> list[dict[str, Any]]:
    """The changes of what a report reads, as kept on its run (``triggered_by``)."""
    return [change.as_dict() for change in affecting(changes, reads)]


def data_wait(
    *,
    slot: datetime,
    previous_slot: datetime,
    reads_changed_at: Mapping[str, str],
    limit_seconds: int | None,
    now: datetime,
) -> DataWait:
    """Whether the ``slot`` of a ``wait_for_data`` report is generated now.

    Its data has arrived when every relation in ``reads_changed_at`` (what it reads that the
    platform was seen to build) changed after ``previous_slot``. A report that has seen none of
    its relations change waits for the limit.
    """
    limit = timedelta(seconds=limit_seconds or DEFAULT_DATA_WAIT_LIMIT_SECONDS)
    changed_at = {relation: datetime.fromisoformat(at) for relation, at in reads_changed_at.items()}
    stale = sorted(relation for relation, at in changed_at.items() if at <= previous_slot)
    if changed_at and not stale:
        arrived = tuple({"relation": relation, "at": at.isoformat()} for relation, at in sorted(changed_at.items()))
        return DataWait(True, f"its data changed after {previous_slot.isoformat()}", arrived)
    missing = ", ".join(stale) or "none of the relations it reads was seen to change"
    deadline = slot + limit
    if now < deadline:
        return DataWait(False, f"waiting for its data until {deadline.isoformat()}: {missing}")
    note = (
        f"Generated at its data wait limit ({_duration(limit)} after the {slot:%Y-%m-%d %H:%M} UTC slot) "
        f"without fresh data: {missing}"
        + (f" (not changed since {previous_slot:%Y-%m-%d %H:%M} UTC)" if stale else "")
        + "."
    )
    return DataWait(True, "its data wait limit passed", note=note)


def _duration(delta: timedelta) -> str:
    from include.categories import describe_duration

    return describe_duration(delta)
