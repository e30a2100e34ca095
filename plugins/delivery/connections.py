"""The Airflow connections channels send through: which exist, and which fit which channel."""

from __future__ import annotations

from typing import Any

from hooks.failures import ConnectionNotDefined

#: Connection types that can carry each channel.
CHANNEL_CONN_TYPES: dict[str, frozenset[str]] = {
    "email": frozenset({"smtp", "email"}),
    "slack": frozenset({"slack", "slackwebhook"}),
    "webhook": frozenset({"http", "https"}),
}


def require_connection(conn_id: str, purpose: str = "") -> Any:
    """The connection ``conn_id``; :class:`ConnectionNotDefined` (a permanent failure) when there is none."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise ConnectionNotDefined(conn_id, purpose) from None


def connection_problem(conn_id: str, channel: str) -> str | None:
    """Why connection ``conn_id`` cannot carry ``channel`` (not defined, or of another type); ``None`` if it can."""
    try:
        conn = require_connection(conn_id, f"{channel} channel")
    except ConnectionNotDefined as missing:
        return str(missing)
    fits = CHANNEL_CONN_TYPES.get(channel, frozenset())
    if conn.conn_type not in fits:
        return (
            f"connection {conn_id!r} is of type {conn.conn_type!r}; a {channel} channel needs one of "
            f"{', '.join(sorted(fits))}"
        )
    return None
