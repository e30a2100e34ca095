"""The platform's assets: one name for each relation and file it writes, the way Airflow and OpenLineage name them.

A warehouse relation is ``postgres://host:port/database/schema/table``: the postgres provider's
asset URI (its sanitizer fills in the port), which the provider turns into the OpenLineage dataset
namespace ``postgres://host:port``, name ``database.schema.table`` (the OpenLineage naming spec).
:func:`relation_uri` is the only place that spells it; host, port and database are the
``warehouse`` connection's, read at run time (:func:`warehouse_location`), never when a DAG file
is parsed. A report file is its object-storage URL (``s3://bucket/key``, ``file:///path``).

DAG files cannot know those URIs, so the events travel through **asset aliases**, whose names are
fixed: ``transform`` emits one event per dbt model it built through :data:`DBT_MODELS`, ``analytics``
one per materialized view it refreshed through :data:`MATERIALIZED_VIEWS`, ``reports`` one per
published file through :data:`REPORT_FILES`. Airflow creates the asset on its first event and ties
it to the alias; a DAG scheduled on an alias (:func:`clock_or_changes`) runs after any event
through it and reads what changed from ``triggering_asset_events`` (:mod:`include.lineage.triggers`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

#: The alias of the dbt models ``transform`` built (one event per model built in a run).
DBT_MODELS = "dbt_models"
#: The alias of the materialized views ``analytics`` refreshed (one event per view refreshed).
MATERIALIZED_VIEWS = "materialized_views"
#: The alias of the report files ``reports`` published to object storage (one event per file).
REPORT_FILES = "report_files"
#: The aliases whose events mean that a warehouse relation changed.
RELATION_ALIASES = (DBT_MODELS, MATERIALIZED_VIEWS)

_SCHEME = "postgres"
_DEFAULT_PORT = 5432
#: Characters kept as they are in a URI path segment (others, such as a space, are %-encoded).
_SAFE = "!$&'()*+,;=:@-._~"


@dataclass(frozen=True, order=True)
class Relation:
    """A table, view or materialized view: ``schema.name`` as PostgreSQL stores them (case kept)."""

    schema: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}"

    def __str__(self) -> str:
        return self.key

    @classmethod
    def from_key(cls, key: str) -> Relation:
        """``"marts.orders"`` -> Relation; the error names a key without exactly one dot."""
        schema, dot, name = str(key).partition(".")
        if not (schema and dot and name) or "." in name:
            raise ValueError(f"{key!r} is not a relation name of the form schema.table")
        return cls(schema, name)


@dataclass(frozen=True)
class WarehouseLocation:
    """Where the warehouse is: the authority and database part of every relation's URI."""

    host: str
    port: int
    database: str

    @property
    def namespace(self) -> str:
        """The OpenLineage dataset namespace of this warehouse (``postgres://host:port``)."""
        return f"{_SCHEME}://{self.host}:{self.port}"

    def relation_uri(self, relation: Relation) -> str:
        return relation_uri(self, relation)

    def relation_of(self, uri: str) -> Relation | None:
        """The relation ``uri`` names in this warehouse, or ``None`` (another warehouse, not a relation)."""
        parsed = parse_relation_uri(uri)
        if parsed is None or parsed[0] != self:
            return None
        return parsed[1]


def relation_uri(location: WarehouseLocation, relation: Relation) -> str:
    """The asset URI of ``relation``: ``postgres://host:port/database/schema/table``."""
    parts = (location.database, relation.schema, relation.name)
    path = "/".join(quote(part, safe=_SAFE) for part in parts)
    return f"{location.namespace}/{path}"


def parse_relation_uri(uri: str) -> tuple[WarehouseLocation, Relation] | None:
    """The warehouse and relation of a ``postgres://`` asset URI; ``None`` for any other URI."""
    parts = urlsplit(uri)
    if parts.scheme not in (_SCHEME, "postgresql") or not parts.hostname:
        return None
    segments = parts.path.split("/")
    if len(segments) != 4 or not all(segments[1:]):
        return None
    _, database, schema, name = (unquote(s) for s in segments)
    location = WarehouseLocation(parts.hostname, parts.port or _DEFAULT_PORT, database)
    return location, Relation(schema, name)


def warehouse_location(conn_id: str | None = None) -> WarehouseLocation:
    """Host, port and database of the ``warehouse`` connection (read at run time, inside a task or command)."""
    from hooks.warehouse import WarehouseHook
    from include.settings import WAREHOUSE_CONN_ID

    conn = WarehouseHook.get_connection(conn_id or WAREHOUSE_CONN_ID)
    if not conn.host:
        raise ValueError(f"connection {conn.conn_id!r} names no host: its relations cannot be named as assets")
    extra = conn.extra_dejson or {}
    database = conn.schema or extra.get("dbname") or extra.get("database") or conn.login or "postgres"
    return WarehouseLocation(conn.host, int(conn.port or _DEFAULT_PORT), database)


def file_uri(url: str) -> str:
    """The asset URI of a published report file: its object-storage URL (a plain path becomes ``file://``)."""
    parts = urlsplit(str(url))
    if not parts.scheme:
        return f"file://{quote(str(url), safe='/' + _SAFE)}"
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
