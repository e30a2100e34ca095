"""What makes a PostgreSQL role unfit to run user SQL (no Airflow import: provisioning uses it too).

A role that runs SQL users wrote must not be a superuser (nor have CREATEROLE, BYPASSRLS,
REPLICATION), must not reach, directly or through any chain of roles, a role that is a superuser
or one of :data:`SERVER_REACHING_ROLES`, and must have no privilege on the platform's own tables.
``SET ROLE`` on a privileged session does not make it fit: user SQL could set it back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

#: Predefined roles a reader may not reach (directly or through other roles), and what each allows.
SERVER_REACHING_ROLES: dict[str, str] = {
    "pg_read_server_files": "reads files on the database server",
    "pg_write_server_files": "writes files on the database server",
    "pg_execute_server_program": "runs programs on the database server",
    "pg_signal_backend": "cancels and terminates other sessions",
    "pg_read_all_data": "reads every table, the platform's own included",
    "pg_write_all_data": "writes every table",
    "pg_read_all_stats": "sees the SQL of every session",
    "pg_monitor": "sees the SQL of every session",
}


@cache
def _problems_sql() -> str:
    return (Path(__file__).resolve().parent / "sql" / "reader_problems.sql").read_text()


def reader_problems(conn: psycopg.Connection, private_tables: Sequence[str] = (), role: str | None = None) -> list[str]:
    """What makes ``role`` (default: this session's login role) unfit to run user SQL; empty if fit.

    :param private_tables: schema-qualified tables the role may not touch at all (the platform's).
    """
    params = {"role": role, "reaching": json.dumps(SERVER_REACHING_ROLES), "private": list(private_tables)}
    rows = conn.execute(_problems_sql(), params).fetchall()
    return list(dict.fromkeys(problem for (problem,) in rows))
