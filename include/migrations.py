"""Versioned schema migrations of the platform tables.

Files ``include/sql/schema/V<version>__<name>.sql`` are applied in version order, each in its own
transaction, and recorded in ``schema_migrations``. A session-level advisory lock serialises
concurrent appliers, so two processes starting at once apply every version exactly once.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from include.sql import SQL_DIR, load_sql

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

MIGRATIONS_DIR = SQL_DIR / "schema"
_FILE_PATTERN = re.compile(r"^V(?P<version>\d+)__(?P<name>[a-z0-9_]+)\.sql$")
#: Key of the advisory lock held while migrating (any fixed bigint; "platform" in ASCII).
ADVISORY_LOCK_KEY = 0x706C6174666F726D


class MigrationError(RuntimeError):
    """A migration file is malformed or an applied migration was edited."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All migrations in ``directory`` in version order; malformed or duplicate names raise."""
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_PATTERN.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files must be named V<version>__<snake_case_name>.sql")
        version = int(match["version"])
        if version in migrations:
            raise MigrationError(f"{path.name}: version {version} already used by {migrations[version].path.name}")
        migrations[version] = Migration(version, match["name"], path)
    return [migrations[v] for v in sorted(migrations)]


def apply_migrations(conn: psycopg.Connection, migrations: list[Migration] | None = None) -> list[int]:
    """Apply pending migrations on ``conn`` (autocommit is handled here); return applied versions."""
    migrations = discover_migrations() if migrations is None else migrations
    conn.autocommit = True
    applied: list[int] = []
    conn.execute(load_sql("schema_migrations/lock.sql"), {"key": ADVISORY_LOCK_KEY})
    try:
        conn.execute(load_sql("schema_migrations/create_table.sql"))
        done = dict(conn.execute(load_sql("schema_migrations/select_applied.sql")))
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration V{migration.version:03d} ({migration.name}) was edited after it "
                        "was applied; add a new migration instead"
                    )
                continue
            with conn.transaction():
                conn.execute(migration.sql)
                conn.execute(
                    load_sql("schema_migrations/insert_applied.sql"),
                    {
                        "version": migration.version,
                        "name": migration.name,
                        "checksum": migration.checksum,
                    },
                )
            log.info("applied schema migration V%03d %s", migration.version, migration.name)
            applied.append(migration.version)
    finally:
        conn.execute(load_sql("schema_migrations/unlock.sql"), {"key": ADVISORY_LOCK_KEY})
    return applied
