"""The reader connection for user SQL, and the platform tables it may never touch."""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

from include.migrations import MIGRATIONS_DIR
from include.sql import SQL_DIR

if TYPE_CHECKING:
    from hooks.warehouse import WarehouseReaderHook

#: Where the migrations create the platform's tables (their SQL names no schema: the default one).
PLATFORM_SCHEMA = "public"
_CREATE_TABLE = re.compile(r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)\b", re.IGNORECASE)


@cache
def platform_tables() -> tuple[str, ...]:
    """Every table the platform's migrations create (and ``schema_migrations``), unqualified."""
    files = [*sorted(MIGRATIONS_DIR.glob("*.sql")), SQL_DIR / "schema_migrations" / "create_table.sql"]
    names = {match.lower() for path in files for match in _CREATE_TABLE.findall(path.read_text(encoding="utf-8"))}
    return tuple(sorted(names))


def private_tables() -> tuple[str, ...]:
    """The platform's tables, schema-qualified: the reader may have no privilege on any of them."""
    return tuple(f"{PLATFORM_SCHEMA}.{name}" for name in platform_tables())


def reader_hook(application_name: str) -> WarehouseReaderHook:
    """The hook that runs alert, report and ad-hoc SQL: connection ``warehouse_reader``, checked per session."""
    from hooks.warehouse import WarehouseReaderHook

    return WarehouseReaderHook(application_name=application_name, private_tables=private_tables())
