"""HTTP hook for webhooks and external APIs, behind the ``external_api`` circuit breaker (per host)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from hooks.circuit_breaker import CircuitBreaker
from hooks.endpoints import url_under_base
from observability.redaction import mask_url


class HttpDependencyError(RuntimeError):
    """The remote service answered with a status that means it is in trouble (5xx or 429)."""

    def __init__(self, method: str, url: str, status_code: int, body: str) -> None:
        super().__init__(f"{method} {mask_url(url)} answered HTTP {status_code}: {body[:200]}")
        self.status_code = status_code


def is_http_failure(error: BaseException) -> bool:
    """Whether ``error`` counts against the external-API breaker.

    Refused or dropped connections, timeouts, HTTP 5xx and 429 count. HTTP 4xx other than 429 means
    the service answered and rejected the request: it does not count.
    """
    import requests

    if isinstance(error, HttpDependencyError):
        return True
    if isinstance(error, requests.HTTPError):
        status = error.response.status_code if error.response is not None else 0
        return status >= 500 or status == 429
    return isinstance(error, (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError))


class ExternalApiHook(BaseHook):
    """Call an HTTP service named by an Airflow connection, through the breaker of its host.

    Connection fields: *host* (a full base URL such as ``https://api.example.com/v1``, or a host name
    with *schema* ``http``/``https`` and *port*); *password* alone is sent as a bearer token,
    *login* + *password* as basic auth; extra ``headers`` (a JSON object) are added to every request.
    An endpoint is a path under the base URL: one that would leave it (another host, ``..``) raises
    :class:`hooks.endpoints.EndpointNotAllowed` and nothing is sent. Secrets in the URL are masked
    in the task log (:func:`observability.redaction.mask_url`).

    :param http_conn_id: the Airflow connection of the service.
    :param timeout: seconds to wait for a connection and for each read.
    """

    conn_name_attr = "http_conn_id"
    default_conn_name = "analytics_api"
    conn_type = "http"
    hook_name = "External HTTP API (circuit breaker)"

    def __init__(self, http_conn_id: str = default_conn_name, *, timeout: float = 10.0) -> None:
        super().__init__()
        self.http_conn_id = http_conn_id
        self.timeout = timeout
        self._session = None
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            conn = self.get_connection(self.http_conn_id)
            host = conn.host or ""
            if "://" in host:
                base = host
            else:
                scheme = conn.schema or "https"
                base = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
            parts = urlsplit(base)
            self._base_url = parts._replace(path=parts.path.rstrip("/")).geturl()
            mask_url(self._base_url)
        return self._base_url

    def get_conn(self):
        """A ``requests.Session`` with the connection's authentication and headers (created once)."""
        if self._session is None:
            import requests

            conn = self.get_connection(self.http_conn_id)
            session = requests.Session()
            if conn.login and conn.password:
                session.auth = (conn.login, conn.password)
            elif conn.password:
                session.headers["Authorization"] = f"Bearer {conn.password}"
            headers = (conn.extra_dejson or {}).get("headers") or {}
            session.headers.update({str(k): str(v) for k, v in headers.items()})
            self._session = session
        return self._session

    def url_for(self, endpoint: str = "") -> str:
        """The absolute URL of ``endpoint``, a path under the connection's base URL (refused otherwise)."""
        return url_under_base(self.base_url, endpoint)

    def breaker_for(self, url: str) -> CircuitBreaker:
        """The external-API breaker of the host of ``url``."""
        parts = urlsplit(url)
        target = parts.hostname or "unknown"
        if parts.port:
            target = f"{target}:{parts.port}"
        return CircuitBreaker("external_api", target, is_failure=is_http_failure)

    def request(self, method: str, endpoint: str = "", **kwargs: Any):
        """Send a request through the breaker; 5xx/429 raise :class:`HttpDependencyError`, 4xx ``HTTPError``."""
        url = self.url_for(endpoint)
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        session = self.get_conn()
        with self.breaker_for(url).guard():
            response = session.request(method, url, **kwargs)
            if response.status_code >= 500 or response.status_code == 429:
                raise HttpDependencyError(method, url, response.status_code, response.text)
            response.raise_for_status()
            return response

    def post(self, endpoint: str = "", **kwargs: Any):
        return self.request("POST", endpoint, **kwargs)

    def get(self, endpoint: str = "", **kwargs: Any):
        return self.request("GET", endpoint, **kwargs)
