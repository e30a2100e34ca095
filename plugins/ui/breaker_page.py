"""The "Circuit breakers" page of the Airflow UI: every breaker and target, and a reset button.

A FastAPI app mounted by the api-server (``plugins/platform_ui.py``) at ``/breakers``. It uses
Airflow's own authentication: the JWT of the logged-in UI user (the ``_token`` cookie) or an
``Authorization: Bearer`` token, validated by the auth manager. Seeing the page needs the ``GET``
permission on the custom view ``Circuit breakers``, resetting needs ``PUT`` (with the simple auth
manager every logged-in user has both). Without a valid login, nothing is shown and a reset is
refused with HTTP 401.

Metrics sent from the api-server process are dropped by Airflow (apache/airflow#69172): a reset
made here is logged, and the monitoring DAG's ``platform.breaker.state`` gauge shows the change.
"""

from __future__ import annotations

import html
import json
import logging
import os
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

log = logging.getLogger(__name__)

URL_PREFIX = "/breakers"
RESOURCE_NAME = "Circuit breakers"
GRAFANA_DASHBOARD_PATH = "/d/analytics-platform/analytics-platform"


def _auth_manager():
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


async def _current_user(request: Request):
    """The authenticated user, or ``None`` (no or invalid token)."""
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.security import HTTPAuthorizationCredentials

    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    credentials = HTTPAuthorizationCredentials(scheme=scheme, credentials=token) if token else None
    try:
        return await get_user(request, None, credentials)
    except HTTPException:
        return None


def _authorized(user, method: str) -> bool:
    return _auth_manager().is_authorized_custom_view(method=method, resource_name=RESOURCE_NAME, user=user)


def _statuses() -> list[dict[str, Any]]:
    from hooks.circuit_breaker import all_statuses
    from observability.redaction import redact

    statuses = [status.as_dict() for status in all_statuses()]
    for status in statuses:  # recorded redacted; redacted again for entries older than that
        status["last_error"] = redact(status["last_error"]) if status["last_error"] else None
    return statuses


def _configuration() -> list[dict[str, Any]]:
    from hooks.circuit_breaker import DEFAULT_BREAKERS, breaker_config

    rows = []
    for name in sorted(DEFAULT_BREAKERS):
        config = breaker_config(name)
        rows.append(
            {
                "breaker": name,
                "failure_threshold": config.failure_threshold,
                "recovery_timeout": config.recovery_timeout,
                "half_open_max_calls": config.half_open_max_calls,
            }
        )
    return rows


def prometheus_url() -> str:
    """Prometheus, as the browser reaches it (``PROMETHEUS_URL``)."""
    return (os.environ.get("PROMETHEUS_URL") or "http://localhost:9090").rstrip("/")


def grafana_url() -> str:
    """Grafana, as the browser reaches it (``GRAFANA_URL``)."""
    return (os.environ.get("GRAFANA_URL") or "http://localhost:3000").rstrip("/")


def _links() -> dict[str, str]:
    return {
        "Grafana dashboard": grafana_url() + GRAFANA_DASHBOARD_PATH,
        "Prometheus: breaker states": prometheus_url() + "/graph?g0.expr=" + quote("platform_breaker_state"),
    }


class ResetRequest(BaseModel):
    breaker: str = Field(min_length=1, max_length=100)
    target: str = Field(min_length=1, max_length=500)


def create_app() -> FastAPI:
    """The page and its JSON API (``GET /api/breakers``, ``POST /api/breakers/reset``)."""
    app = FastAPI(title="Circuit breakers", docs_url=None, redoc_url=None, openapi_url=None)

    async def require(request: Request, method: str):
        user = await _current_user(request)
        if user is None:
            raise HTTPException(401, "Not authenticated: log in to Airflow first")
        if not _authorized(user, method):
            raise HTTPException(403, f"{user.get_name()} may not {'reset' if method == 'PUT' else 'see'} breakers")
        return user

    @app.get("/", response_class=HTMLResponse)
    async def page(request: Request) -> HTMLResponse:
        user = await _current_user(request)
        if user is None:
            login = _auth_manager().get_url_login(next_url=str(request.url))
            return HTMLResponse(_render_login_required(login), status_code=401)
        if not _authorized(user, "GET"):
            return HTMLResponse(_render_message("You may not see the circuit breakers."), status_code=403)
        return HTMLResponse(
            _render_page(_statuses(), _configuration(), _links(), user.get_name(), _authorized(user, "PUT"))
        )

    @app.get("/api/breakers")
    async def list_breakers(request: Request) -> dict[str, Any]:
        await require(request, "GET")
        return {"breakers": _statuses(), "configuration": _configuration(), "links": _links()}

    @app.post("/api/breakers/reset")
    async def reset(request: Request) -> dict[str, Any]:
        from hooks.circuit_breaker import CircuitBreaker, read_status

        user = await require(request, "PUT")
        # Cross-site requests: only same-origin JSON is accepted (a form post cannot send it).
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise HTTPException(415, "send the reset as application/json")
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            raise HTTPException(403, "cross-origin reset refused")
        body = ResetRequest.model_validate(await request.json())
        known = {(s["breaker"], s["target"]) for s in _statuses()}
        if (body.breaker, body.target) not in known:
            raise HTTPException(404, f"no circuit breaker {body.breaker!r} for target {body.target!r}")
        breaker = CircuitBreaker(body.breaker, body.target)
        previous = breaker.reset()
        log.warning("circuit breaker %s/%s reset by %s (was %s)", body.breaker, body.target, user.get_name(), previous)
        return {"previous_state": previous, "status": read_status(breaker.store, body.breaker, body.target).as_dict()}

    return app


# ----------------------------------------------------------------------------- HTML

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1a202c; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border-bottom: 1px solid #e2e8f0; padding: 0.35rem 0.8rem; text-align: left; }
td.state-open { color: #c53030; font-weight: 600; }
td.state-half_open { color: #b7791f; font-weight: 600; }
td.state-closed { color: #2f855a; }
#message { margin: 0.5rem 0; font-weight: 600; }
"""

_SCRIPT = """
async function resetBreaker(button) {
  const message = document.getElementById("message");
  button.disabled = true;
  const response = await fetch("api/breakers/reset", {
    method: "POST",
    credentials: "same-origin",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({breaker: button.dataset.breaker, target: button.dataset.target}),
  });
  const body = await response.json().catch(() => ({}));
  if (response.ok) {
    message.textContent = `Reset ${button.dataset.breaker}/${button.dataset.target}: ${body.previous_state} -> closed`;
    const row = button.closest("tr");
    row.querySelector("td.state").textContent = body.status.state;
    row.querySelector("td.state").className = "state state-" + body.status.state;
    row.querySelector("td.failures").textContent = body.status.failures;
    row.querySelector("td.opened").textContent = "-";
    row.querySelector("td.retry").textContent = "-";
  } else {
    message.textContent = `Reset refused (HTTP ${response.status}): ${body.detail || ""}`;
    button.disabled = false;
  }
}
"""


def _document(body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Circuit breakers</title>"
        f"<style>{_STYLE}</style></head><body>{body}<script>{_SCRIPT}</script></body></html>"
    )


def _render_message(text: str) -> str:
    return _document(f"<h1>Circuit breakers</h1><p id='message'>{html.escape(text)}</p>")


def _render_login_required(login_url: str) -> str:
    return _document(
        "<h1>Circuit breakers</h1><p id='message'>Not logged in: "
        f"<a id='login' href='{html.escape(login_url)}'>log in to Airflow</a> to see and reset circuit breakers.</p>"
    )


def _render_page(statuses, configuration, links, user_name: str, can_reset: bool) -> str:
    def cell(value: Any, css: str = "") -> str:
        text = "-" if value is None or value == "" else str(value)
        return f"<td class='{css}'>{html.escape(text)}</td>"

    rows = []
    for s in statuses:
        retry = f"{s['retry_after']:.0f}s" if s["retry_after"] is not None else None
        button = (
            f"<button type='button' data-breaker='{html.escape(s['breaker'])}' "
            f"data-target='{html.escape(s['target'])}' onclick='resetBreaker(this)'>Reset</button>"
            if can_reset
            else ""
        )
        rows.append(
            f"<tr data-breaker='{html.escape(s['breaker'])}' data-target='{html.escape(s['target'])}'>"
            + cell(s["breaker"])
            + cell(s["target"])
            + cell(s["state"], f"state state-{s['state']}")
            + cell(s["failures"], "failures")
            + cell(s["opened_at"], "opened")
            + cell(retry, "retry")
            + cell(s["last_error"], "error")
            + f"<td>{button}</td></tr>"
        )
    breakers = (
        "<table id='breakers'><thead><tr><th>Breaker</th><th>Target</th><th>State</th><th>Failures</th>"
        "<th>Opened at</th><th>Retry after</th><th>Last error</th><th></th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        if rows
        else "<p id='breakers-empty'>No breaker has been used yet.</p>"
    )
    config_rows = "".join(
        "<tr>"
        + cell(c["breaker"])
        + cell(c["failure_threshold"])
        + cell(f"{c['recovery_timeout']:g}s")
        + cell(c["half_open_max_calls"])
        + "</tr>"
        for c in configuration
    )
    link_items = "".join(
        f"<li><a href='{html.escape(url)}' target='_blank' rel='noopener'>{html.escape(label)}</a></li>"
        for label, url in links.items()
    )
    data = html.escape(json.dumps({"user": user_name}))
    return _document(
        f"<h1>Circuit breakers</h1><p>Logged in as <span id='user' data-info='{data}'>{html.escape(user_name)}"
        "</span>. A breaker opens after consecutive failures of its dependency and lets a trial call through "
        "once its recovery time has passed; tasks refused by an open breaker wait (up for reschedule) "
        "without using a retry.</p><p id='message'></p>"
        + breakers
        + "<h2>Configuration</h2><table id='configuration'><thead><tr><th>Breaker</th><th>Opens after failures</th>"
        "<th>Recovery time</th><th>Trial calls</th></tr></thead><tbody>"
        + config_rows
        + "</tbody></table><h2>Metrics</h2><ul id='links'>"
        + link_items
        + "</ul>"
    )
