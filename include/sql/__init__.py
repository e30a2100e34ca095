"""Every SQL statement of the platform, in ``<domain>/<name>.sql`` files."""

from __future__ import annotations

from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent


@cache
def load_sql(name: str) -> str:
    """Return the text of ``include/sql/<name>`` (e.g. ``"monitoring/insert_health_check.sql"``)."""
    path = (SQL_DIR / name).resolve()
    if SQL_DIR not in path.parents or path.suffix != ".sql":
        raise ValueError(f"not a SQL file under include/sql: {name!r}")
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"no SQL file include/sql/{name}") from None
