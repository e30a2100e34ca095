"""Apply ``airflow_settings.yaml`` (the Astro CLI's file) to a local Airflow metadata database.

The Astro CLI applies the same file inside its containers on ``astro dev start``; ``make run`` applies
it here, so pools, connections and variables have one source of truth. Connection fields can be
overridden from a URL (the warehouse points at the resolved local PostgreSQL, not the compose host).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

SETTINGS_FILE = Path(__file__).resolve().parent.parent / "airflow_settings.yaml"


def load_settings(path: Path = SETTINGS_FILE) -> dict[str, Any]:
    """The ``airflow:`` section of the settings file, with empty lists for missing parts."""
    document = yaml.safe_load(path.read_text()) or {}
    section = document.get("airflow") or {}
    return {
        "connections": section.get("connections") or [],
        "pools": section.get("pools") or [],
        "variables": section.get("variables") or [],
    }


def connection_fields_from_url(url: str) -> dict[str, Any]:
    """Astro-style ``conn_*`` fields from a URL such as ``postgresql://user:pw@host:5432/db``."""
    parts = urlsplit(url)
    scheme = {"postgresql": "postgres"}.get(parts.scheme, parts.scheme)
    return {
        "conn_type": scheme,
        "conn_host": parts.hostname or "",
        "conn_port": parts.port,
        "conn_login": unquote(parts.username) if parts.username else None,
        "conn_password": unquote(parts.password) if parts.password else None,
        "conn_schema": parts.path.lstrip("/") or None,
    }


def apply_settings(settings: dict[str, Any], overrides: dict[str, str] | None = None) -> dict[str, int]:
    """Create or update every pool, connection and variable; return how many of each."""
    # Admin code on the metadata database (not task code): the ORM models are the right tool.
    from airflow.models.connection import Connection
    from airflow.models.pool import Pool
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    overrides = overrides or {}
    for pool in settings["pools"]:
        Pool.create_or_update_pool(
            name=pool["pool_name"],
            slots=int(pool["pool_slot"]),
            description=pool.get("pool_description", ""),
            include_deferred=bool(pool.get("pool_include_deferred", False)),
        )
    with create_session() as session:
        for entry in settings["connections"]:
            fields = dict(entry)
            if entry["conn_id"] in overrides:
                fields.update(connection_fields_from_url(overrides[entry["conn_id"]]))
            extra = fields.get("conn_extra")
            connection = Connection(
                conn_id=fields["conn_id"],
                conn_type=fields.get("conn_type"),
                host=fields.get("conn_host"),
                schema=fields.get("conn_schema"),
                login=fields.get("conn_login"),
                password=fields.get("conn_password"),
                port=int(fields["conn_port"]) if fields.get("conn_port") else None,
                extra=json.dumps(extra) if isinstance(extra, dict) else extra,
            )
            existing = session.query(Connection).filter(Connection.conn_id == connection.conn_id).one_or_none()
            if existing is not None:
                session.delete(existing)
                session.flush()
            session.add(connection)
    for variable in settings["variables"]:
        Variable.set(variable["variable_name"], variable["variable_value"])
    return {key: len(value) for key, value in settings.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", type=Path, default=SETTINGS_FILE)
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="CONN_ID=URL",
        help="replace a connection's fields with those of URL",
    )
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.override)
    counts = apply_settings(load_settings(args.file), overrides)
    print("applied " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
