"""The warehouse's relations as Airflow Assets: the one naming function, for every layer of the platform.

``postgres://host:port/database/schema/table`` is the postgres provider's asset URI (its sanitizer
fills in the port); the provider turns it into the OpenLineage dataset namespace
``postgres://host:port``, name ``database.schema.table`` (the OpenLineage naming spec).
:func:`relation_uri` is the only place that spells it. Host, port and database are the
``warehouse`` connection's, read at run time (:func:`warehouse_location`), never when a DAG file
is parsed. It lives beside the warehouse hook because the dbt operators (``plugins/``) name the
models they build with it too; ``include.lineage.assets`` has the rest (aliases, events, schedules).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

_SCHEME = "postgres"
_DEFAULT_PORT = 5432
#: Characters kept as they are in a URI path segment (others, such as a space, are %-encoded).
URI_SAFE = "!$&'()*+,;=:@-._~"


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
    path = "/".join(quote(part, safe=URI_SAFE) for part in parts)
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

    conn = WarehouseHook.get_connection(conn_id or WarehouseHook.default_conn_name)
    if not conn.host:
        raise ValueError(f"connection {conn.conn_id!r} names no host: its relations cannot be named as assets")
    extra = conn.extra_dejson or {}
    database = conn.schema or extra.get("dbname") or extra.get("database") or conn.login or "postgres"
    return WarehouseLocation(conn.host, int(conn.port or _DEFAULT_PORT), database)
