"""Why a run runs: the warehouse relations that changed, from the run's triggering asset events.

An asset-triggered run of ``alerts``, ``reports`` or ``analytics`` gets the events that woke it in
``triggering_asset_events`` (each event under its asset and under every alias it came through),
which the task passes on. :func:`relation_changes` turns them into one :class:`RelationChange` per event of a
relation of this warehouse; the consumers evaluate, generate or refresh only what reads those
relations and record :meth:`RelationChange.as_dict` as the run's "why".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from include.lineage.assets import Relation, WarehouseLocation, warehouse_location


@dataclass(frozen=True)
class RelationChange:
    """One asset event of a warehouse relation: what changed, when, and which task said so."""

    relation: Relation
    uri: str
    timestamp: str
    source_dag_id: str | None = None
    source_task_id: str | None = None
    source_run_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """``dag_id.task_id`` of the task that emitted the event (``"api"`` for one posted through the REST API)."""
        if not self.source_dag_id:
            return "api"
        return f"{self.source_dag_id}.{self.source_task_id}" if self.source_task_id else self.source_dag_id

    def as_dict(self) -> dict[str, Any]:
        """The JSON form kept with what the event triggered (alert events, report runs)."""
        data: dict[str, Any] = {
            "relation": self.relation.key,
            "asset": self.uri,
            "at": self.timestamp,
            "source": self.source,
            "source_run_id": self.source_run_id,
        }
        if self.extra.get("rows_affected") is not None:
            data["rows_affected"] = self.extra["rows_affected"]
        return data

    def describe(self) -> str:
        rows = self.extra.get("rows_affected")
        counted = f", {rows} rows" if rows is not None else ""
        return f"{self.relation.key} changed at {self.timestamp} ({self.source}, run {self.source_run_id}{counted})"


def relation_changes(
    events: Mapping[Any, Iterable[Any]] | None, location: WarehouseLocation | None = None
) -> list[RelationChange]:
    """The changes of this warehouse's relations among a run's ``triggering_asset_events``, oldest first.

    Empty for a run that assets did not trigger. Events of other assets (report files, another
    warehouse) are left out; an event reached through several aliases counts once.
    """
    if not events:
        return []
    location = location or warehouse_location()
    changes: dict[tuple, RelationChange] = {}
    for key in events:
        for event in events[key]:
            relation = location.relation_of(event.asset.uri)
            if relation is None:
                continue
            timestamp = event.timestamp.isoformat() if hasattr(event.timestamp, "isoformat") else str(event.timestamp)
            identity = (event.asset.uri, timestamp, event.source_run_id, event.source_task_id, event.source_map_index)
            changes.setdefault(
                identity,
                RelationChange(
                    relation=relation,
                    uri=event.asset.uri,
                    timestamp=timestamp,
                    source_dag_id=event.source_dag_id,
                    source_task_id=event.source_task_id,
                    source_run_id=event.source_run_id,
                    extra=dict(event.extra or {}),
                ),
            )
    return sorted(changes.values(), key=lambda change: (change.timestamp, change.relation))


def changed(changes: Iterable[RelationChange]) -> set[str]:
    """The ``schema.table`` keys of the relations that changed."""
    return {change.relation.key for change in changes}


def affecting(changes: Iterable[RelationChange], reads: Iterable[str]) -> list[RelationChange]:
    """The changes of relations among ``reads`` (``schema.table`` keys): why a definition that reads them runs."""
    wanted = set(reads)
    return [change for change in changes if change.relation.key in wanted]


def log_changes(log: Any, changes: list[RelationChange], what: str) -> None:
    """Say in the task log why this run runs (the triggering asset events), or that the clock started it."""
    if not changes:
        log.info("%s: not triggered by a data change (clock or manual run)", what)
        return
    log.info("%s: triggered by %d change(s) of warehouse relations:", what, len(changes))
    for change in changes:
        log.info("  %s", change.describe())
