"""The HTTP provider's ``HttpHook`` for webhooks and external APIs, behind the breaker of each server.

One HTTP session implementation for the platform: webhooks (:mod:`delivery.webhook`), the
analytics API service and Airflow's REST API (:mod:`hooks.airflow_api`) all build their session
with :class:`HttpHook` (base URL from the connection, its options ``timeout``, ``verify``,
``proxies``, ``cert`` ..., TCP keep-alive) and send with its ``run_and_check``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from airflow.providers.http.hooks.http import HttpHook

from hooks.circuit_breaker import CircuitBreaker
from hooks.endpoints import url_under_base
from hooks.failures import counts_against_breaker, raise_for_http_status
from observability.redaction import mask_url

#: Connection extras the provider reads as request options (everything else it would send as a header).
HTTP_OPTIONS = frozenset(
    {
        "stream",
        "cert",
        "proxies",
        "proxy",
        "timeout",
        "verify",
        "verify_ssl",
        "allow_redirects",
        "max_redirects",
        "trust_env",
        "check_response",
        "srv_lookup",
    }
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def http_breaker_target(url: str) -> str:
    """The breaker target of the server of ``url``: ``host:port``, the port really used (80/443 by default)."""
    parts = urlsplit(url)
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)
    return f"{parts.hostname or 'unknown'}:{port}"


class _OptionsOnly:
    """A connection as the provider's session code should see it: options, and only the ``headers`` extra as headers."""

    def __init__(self, conn: Any) -> None:
        extra = conn.extra_dejson or {}
        headers = extra.get("headers") or {}
        self.host = conn.host
        self.extra = "{}"
        self.extra_dejson = {
            **{k: v for k, v in extra.items() if k in HTTP_OPTIONS},
            **{str(k): str(v) for k, v in headers.items()},
        }


class ExternalApiHook(HttpHook):
    """Call an HTTP service named by an Airflow connection, through the ``external_api`` breaker of its server.

    Connection (``http``): *host* (a full base URL such as ``https://api.example.com/v1``, or a
    host with *schema* and *port*); *login* + *password* is basic auth, a *password* alone a bearer
    token; extra ``headers`` (a JSON object) are added to every request, and the provider's
    request options (``timeout``, ``verify``, ``proxies``, ``cert`` ...) apply. Other extras (such
    as a webhook's ``signing_secret``) are never sent. An endpoint is a path under the base URL:
    one that would leave it raises :class:`hooks.endpoints.EndpointNotAllowed` and nothing is sent.
    Secrets in the URL are masked in the task log. Redirects are not followed.

    Answers: 2xx returns the response; 5xx and 429 raise :class:`hooks.failures.HttpDependencyError`
    (counts against the breaker); any other status :class:`hooks.failures.HttpRejected` (does not).

    :param http_conn_id: the Airflow connection of the service.
    :param timeout: seconds to wait for a connection and for each read (the connection's
        ``timeout`` extra wins).
    """

    conn_name_attr = "http_conn_id"
    default_conn_name = "analytics_api"
    conn_type = "http"
    hook_name = "External HTTP API (circuit breaker)"

    def __init__(self, http_conn_id: str = default_conn_name, *, timeout: float = 10.0) -> None:
        super().__init__(method="POST", http_conn_id=http_conn_id)
        self.timeout = timeout
        self._session = None

    # ------------------------------------------------------------------ the provider's session

    def _set_base_url(self, connection) -> None:
        super()._set_base_url(connection)
        parts = urlsplit(self.base_url)
        self.base_url = parts._replace(path=parts.path.rstrip("/")).geturl()
        mask_url(self.base_url)

    def _configure_session_from_auth(self, session, connection):
        if connection.password and not connection.login:
            session.headers["Authorization"] = f"Bearer {connection.password}"
            return session
        return super()._configure_session_from_auth(session, connection)

    def _configure_session_from_extra(self, session, connection, extra_options: dict[str, Any]):
        return super()._configure_session_from_extra(session, _OptionsOnly(connection), extra_options)

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None):
        """The provider's ``requests.Session`` for the connection (made once per hook)."""
        if self._session is None or headers or extra_options:
            session = super().get_conn(headers, extra_options)
            if headers or extra_options:
                return session
            self._session = session
        return self._session

    # ------------------------------------------------------------------ requests

    def url_for(self, endpoint: str = "") -> str:
        """The absolute URL of ``endpoint``, a path under the connection's base URL (refused otherwise)."""
        if not self._base_url_initialized:
            self._set_base_url(self.get_connection(self.http_conn_id))
        return url_under_base(self.base_url, endpoint)

    def url_from_endpoint(self, endpoint: str | None) -> str:
        return self.url_for(endpoint or "")

    def breaker_for(self, url: str) -> CircuitBreaker:
        """The ``external_api`` breaker of the server of ``url``."""
        return CircuitBreaker("external_api", http_breaker_target(url), is_failure=counts_against_breaker)

    def request(self, method: str, endpoint: str = "", **kwargs: Any):
        """Send one request through the breaker (``kwargs``: ``data``, ``json``, ``params``, ``headers``)."""
        import requests

        session = self.get_conn()
        url = self.url_for(endpoint)
        prepared = session.prepare_request(requests.Request(method, url, **kwargs))
        options = {**self.merged_extra, "check_response": False, "allow_redirects": False}
        options["timeout"] = options.get("timeout") or self.timeout
        with self.breaker_for(url).guard():
            response = self.run_and_check(session, prepared, options)
            raise_for_http_status(method, mask_url(url), response.status_code, response.text)
            return response

    def post(self, endpoint: str = "", **kwargs: Any):
        return self.request("POST", endpoint, **kwargs)

    def get(self, endpoint: str = "", **kwargs: Any):
        return self.request("GET", endpoint, **kwargs)
