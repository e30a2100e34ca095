"""The platform's assets: one name for each relation and file it writes, the way Airflow and OpenLineage name them.

A warehouse relation is ``postgres://host:port/database/schema/table``, named by
:func:`hooks.warehouse_assets.relation_uri` (the one naming function; host, port and database
from the ``warehouse`` connection at run time). A report file is its object-storage URL
(``s3://bucket/key``, ``file:///path``).

DAG files cannot know those URIs, so the events travel through **asset aliases**, whose names are
fixed: ``transform`` emits one event per dbt model it built through :data:`DBT_MODELS`, ``analytics``
one per materialized view it refreshed through :data:`MATERIALIZED_VIEWS`, ``reports`` one per
published file through :data:`REPORT_FILES`. Airflow creates the asset on its first event and ties
it to the alias; a DAG scheduled on an alias (:func:`clock_or_changes`) runs after any event
through it and reads what changed from ``triggering_asset_events`` (:mod:`include.lineage.triggers`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from hooks.warehouse_assets import (
    URI_SAFE,
    Relation,
    WarehouseLocation,
    parse_relation_uri,
    relation_uri,
    warehouse_location,
)

__all__ = [
    "DBT_MODELS",
    "MATERIALIZED_VIEWS",
    "RELATION_ALIASES",
    "REPORT_FILES",
    "Relation",
    "WarehouseLocation",
    "clock_or_changes",
    "emit",
    "file_uri",
    "parse_relation_uri",
    "relation_uri",
    "warehouse_location",
]

#: The alias of the dbt models ``transform`` built (one event per model built in a run).
DBT_MODELS = "dbt_models"
#: The alias of the materialized views ``analytics`` refreshed (one event per view refreshed).
MATERIALIZED_VIEWS = "materialized_views"
#: The alias of the report files ``reports`` published to object storage (one event per file).
REPORT_FILES = "report_files"
#: The aliases whose events mean that a warehouse relation changed.
RELATION_ALIASES = (DBT_MODELS, MATERIALIZED_VIEWS)


def file_uri(url: str) -> str:
    """The asset URI of a published report file: its object-storage URL (a plain path becomes ``file://``)."""
    parts = urlsplit(str(url))
    if not parts.scheme:
        return f"file://{quote(str(url), safe='/' + URI_SAFE)}"
    return str(url)


def emit(outlet_events: Any, alias: str, uris: Mapping[str, Mapping[str, Any]]) -> int:
    """Add one asset event per URI (with its extra) through ``alias``; return how many.

    ``outlet_events`` is the task's ``context["outlet_events"]``; the task must declare
    ``outlets=[AssetAlias(alias)]``. Nothing is added for an empty ``uris``: a run that changed
    nothing emits nothing.
    """
    from airflow.sdk import Asset, AssetAlias

    events = outlet_events[AssetAlias(alias)]
    for uri, extra in uris.items():
        events.add(Asset(uri=uri), extra=dict(extra))
    return len(uris)


def clock_or_changes(cron: str, aliases: Iterable[str]) -> Any:
    """A schedule that runs on ``cron`` (UTC) and after any asset event through one of ``aliases``."""
    from airflow.sdk import AssetAlias, AssetAny, AssetOrTimeSchedule, CronTriggerTimetable

    return AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(cron, timezone="UTC"),
        assets=AssetAny(*(AssetAlias(name) for name in aliases)),
    )
