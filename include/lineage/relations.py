"""The relations a query reads, found from its SQL and resolved the way the reader role resolves them.

:func:`referenced_tables` parses the SQL with sqlglot (PostgreSQL dialect) and walks its scopes:
every table named in ``FROM`` / ``JOIN``, in subqueries, ``LATERAL``, ``EXISTS``, set operations
and CTE bodies; a CTE's own name is not a table (nor are functions such as ``generate_series``).
Unquoted names fold to lower case, quoted ones keep theirs, as PostgreSQL does.

:func:`resolve_relations` runs on a connection of the reader role (``warehouse_reader``): a
qualified name stays in its schema, an unqualified one goes to the first schema of the reader's
effective search path that has it (``current_schemas``: only schemas it may use), and a plain view
adds what it reads, recursively, from the catalog (``pg_depend`` of its rewrite rule). A name the
catalog does not know yet is kept (an unqualified one in the first schema of the search path) and
listed as unresolved, so it still matches once dbt builds it.

A definition may declare its relations instead (``reads: [schema.table, ...]``): then the SQL is
not parsed at all (:func:`declared_relations`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from include.lineage.assets import Relation
from include.sql import load_sql


class UnreadableSql(ValueError):
    """The SQL could not be parsed to find what it reads (the message says where)."""


@dataclass(frozen=True)
class TableReference:
    """A table as the SQL names it: its schema if written, and its name (case folded as PostgreSQL does)."""

    schema: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class RelationsRead:
    """What a definition reads: ``schema.table`` keys, the names not found, how they were found."""

    relations: tuple[str, ...]
    unresolved: tuple[str, ...] = ()
    #: ``declared`` (the definition lists them), ``sql`` (found from the SQL) or ``error`` (unreadable SQL)
    origin: str = "sql"
    note: str | None = None

    def as_row(self) -> dict[str, Any]:
        """The columns ``reads``, ``reads_origin`` and ``reads_note`` of a definition."""
        return {"reads": list(self.relations), "reads_origin": self.origin, "reads_note": self.note}


def _identifier(node: Any) -> str | None:
    from sqlglot import exp

    if not isinstance(node, exp.Identifier):
        return None
    return node.this if node.quoted else node.this.lower()


def referenced_tables(sql: str) -> list[TableReference]:
    """Every table ``sql`` reads, each once, in the order first seen; CTE names and functions excluded."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError
    from sqlglot.optimizer.scope import traverse_scope

    try:
        statements = [s for s in sqlglot.parse(sql, read="postgres") if s is not None]
    except (ParseError, TokenError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnreadableSql(f"the SQL could not be parsed to find the relations it reads: {first}") from None
    found: dict[TableReference, None] = {}
    for statement in statements:
        for scope in traverse_scope(statement):
            for source in scope.sources.values():
                if not isinstance(source, exp.Table):
                    continue  # a CTE or a subquery: its own scope is walked too
                name = _identifier(source.this)
                if name is None:
                    continue  # a function in FROM (generate_series, unnest...)
                schema = _identifier(source.args.get("db")) if source.args.get("db") else None
                found.setdefault(TableReference(schema, name))
    return list(found)


def declared_relations(keys: Iterable[str]) -> RelationsRead:
    """What a definition declares it reads (``schema.table`` each); the error names a bad entry."""
    relations = sorted({Relation.from_key(key).key for key in keys})
    return RelationsRead(tuple(relations), origin="declared")


def resolve_relations(conn: Any, references: Sequence[TableReference]) -> RelationsRead:
    """Resolve ``references`` on ``conn`` (a reader connection) and expand the plain views among them."""
    if not references:
        return RelationsRead(())
    payload = [{"ord": i, "schema_name": ref.schema, "relation_name": ref.name} for i, ref in enumerate(references)]
    rows = conn.execute(load_sql("lineage/resolve_relations.sql"), {"refs": json.dumps(payload)}).fetchall()
    relations: set[str] = set()
    missing: list[TableReference] = []
    for ordinal, schema, name in rows:
        if schema is None:
            missing.append(references[ordinal])
        else:
            relations.add(Relation(schema, name).key)
    note = None
    unresolved = tuple(str(ref) for ref in missing)
    if missing:
        default_schema = conn.execute(load_sql("lineage/default_schema.sql")).fetchone()[0]
        for ref in missing:
            schema = ref.schema or default_schema
            if schema:
                relations.add(Relation(schema, ref.name).key)
        note = f"not found by the reader role (yet): {', '.join(unresolved)}"
    return RelationsRead(tuple(sorted(relations)), unresolved, "sql", note)


def relations_read(conn: Any, sql: str, declared: Iterable[str] | None = None) -> RelationsRead:
    """What a definition reads: its declared relations, else those found from ``sql`` on ``conn``.

    SQL that cannot be parsed reads nothing known (origin ``error``, the note says why): the
    definition still runs on its clock; data changes do not trigger it.
    """
    if declared:
        return declared_relations(declared)
    try:
        references = referenced_tables(sql)
    except UnreadableSql as error:
        return RelationsRead((), origin="error", note=str(error))
    return resolve_relations(conn, references)
