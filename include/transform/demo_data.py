"""Demo source data for the bundled dbt project: the ``raw`` schema the project's sources read.

``make run`` loads it (``python -m include dbt load-demo``) so the project builds on a fresh
machine. Loading again is safe: rows are upserted and ``loaded_at`` is set to now, so the sources
pass their freshness checks after every load.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from include.sql import load_sql

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

DEMO_STATEMENTS = (
    "transform/create_raw_tables.sql",
    "transform/upsert_demo_customers.sql",
    "transform/upsert_demo_orders.sql",
)


def load_demo_data(conn: psycopg.Connection) -> dict[str, int]:
    """Create ``raw.customers`` / ``raw.orders`` if needed and upsert the demo rows (one transaction).

    Returns the number of rows in each raw table afterwards.
    """
    with conn.transaction():
        for name in DEMO_STATEMENTS:
            conn.execute(load_sql(name))
        counts = {
            table: conn.execute(load_sql(f"transform/count_raw_{table}.sql")).fetchone()[0]
            for table in ("customers", "orders")
        }
    log.info("demo data loaded: %s", ", ".join(f"raw.{t}={n} rows" for t, n in counts.items()))
    return counts
