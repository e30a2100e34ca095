"""Airflow's own REST API (v2) for tasks, which may not read the metadata database in Airflow 3."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from hooks.external_api import ExternalApiHook


class AirflowApiHook(ExternalApiHook):
    """Read Airflow's REST API v2 with a JWT, through the ``external_api`` breaker of the api-server.

    Connection (``http`` type): *host* is the api-server's base URL (``http://api-server:8080``).
    *login* and *password* of a user with read access are exchanged for a token at ``/auth/token``;
    a *password* alone is used as a ready token; with neither, a token is requested without
    credentials, which the simple auth manager grants in "all admins" mode (Astro's local setup).

    :param airflow_api_conn_id: the Airflow connection of the api-server.
    :param timeout: seconds to wait for a connection and for each read.
    """

    conn_name_attr = "airflow_api_conn_id"
    default_conn_name = "airflow_api"
    conn_type = "http"
    hook_name = "Airflow REST API v2"

    #: Largest page the API serves by default (``[api] maximum_page_limit``).
    PAGE_SIZE = 100

    def __init__(self, airflow_api_conn_id: str = default_conn_name, *, timeout: float = 30.0) -> None:
        super().__init__(http_conn_id=airflow_api_conn_id, timeout=timeout)
        self.airflow_api_conn_id = airflow_api_conn_id

    def _configure_session_from_auth(self, session, connection):
        """A bearer token of the api-server (obtained when the session is made)."""
        if connection.login and connection.password:
            token = self._request_token(
                session, "POST", json={"username": connection.login, "password": connection.password}
            )
        elif connection.password:
            token = connection.password
        else:
            token = self._request_token(session, "GET")
        session.headers["Authorization"] = f"Bearer {token}"
        return session

    def _request_token(self, session, method: str, **kwargs: Any) -> str:
        url = self.url_for("auth/token")
        with self.breaker_for(url).guard():
            response = session.request(method, url, timeout=self.timeout, allow_redirects=False, **kwargs)
        if response.status_code >= 400:
            raise PermissionError(
                f"connection {self.http_conn_id!r}: the api-server refused a token at {url} "
                f"(HTTP {response.status_code}); check the connection's login and password"
            )
        return response.json()["access_token"]

    def iter_task_instances(self, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Every task instance of every DAG and run matching ``params``, page by page (keyset cursor)."""
        cursor = ""
        while True:
            query = {**params, "limit": self.PAGE_SIZE, "cursor": cursor, "order_by": "id"}
            page = self.get("api/v2/dags/~/dagRuns/~/taskInstances", params=query).json()
            yield from page["task_instances"]
            cursor = page.get("next_cursor")
            if not cursor:
                return
