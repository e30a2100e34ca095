"""The "Circuit breakers" page, served by a real api-server and used in headless Chromium."""

from __future__ import annotations

import json

import pytest
import requests

from tests.support.browser import Chromium


@pytest.fixture
def breakers(redis_client):
    """One open breaker and one closed breaker with failures, in the Redis the api-server reads."""
    from hooks.circuit_breaker import BreakerConfig, CircuitBreaker

    opened = CircuitBreaker("external_api", "hooks.example.com", config=BreakerConfig(1, 120))
    counting = CircuitBreaker("database", "warehouse", config=BreakerConfig(5, 60))
    for breaker, failures in ((opened, 1), (counting, 2)):
        for _ in range(failures):
            with pytest.raises(ConnectionError), breaker.guard():
                raise ConnectionError("connection refused")
    assert (opened.status().state, counting.status().state) == ("open", "closed")
    return opened, counting


def _reset_from_page(browser: Chromium, breaker: str, target: str) -> int:
    """What the page's reset button sends, from the page's origin; returns the HTTP status."""
    body = json.dumps({"breaker": breaker, "target": target})
    return browser.evaluate(
        "fetch('api/breakers/reset', {method: 'POST', credentials: 'same-origin', "
        f"headers: {{'Content-Type': 'application/json'}}, body: {json.dumps(body)}}}).then(r => r.status)"
    )


def test_breaker_page_lists_breakers_and_resets_only_for_a_logged_in_user(api_server, breakers):
    opened, counting = breakers
    page = f"{api_server.url}/breakers/"
    with Chromium() as browser:
        # Not logged in: nothing is shown, the page points to Airflow's login, and a reset is refused.
        browser.open(page)
        assert "Not logged in" in browser.text("#message")
        assert browser.evaluate("document.querySelector('#breakers') === null")
        assert "/auth/login" in browser.evaluate("document.querySelector('#login').href")
        assert _reset_from_page(browser, "external_api", "hooks.example.com") == 401
        assert opened.status().state == "open"

        # Log in through Airflow's own login form; it sends the user back to the page.
        browser.open(f"{api_server.url}/auth/login?next=/breakers/")
        browser.type_into("input[name=username]", "admin")
        browser.type_into("input[name=password]", api_server.password)
        browser.wait_for("!document.querySelector('button[type=submit]').disabled")
        browser.evaluate("document.querySelector('button[type=submit]').click()")
        browser.wait_for("location.pathname === '/breakers/' && document.querySelector('#breakers') !== null")
        assert browser.text("#user") == "admin"

        rows = browser.evaluate(
            "[...document.querySelectorAll('#breakers tbody tr')].map(r => [...r.cells].map(c => c.textContent))"
        )
        by_breaker = {(row[0], row[1]): row for row in rows}
        assert set(by_breaker) == {("external_api", "hooks.example.com"), ("database", "warehouse")}
        _, _, state, failures, opened_at, retry_after, last_error, button = by_breaker[
            ("external_api", "hooks.example.com")
        ]
        assert (state, failures, button) == ("open", "1", "Reset")
        assert opened_at.startswith("20") and retry_after.endswith("s") and "refused" in last_error
        assert by_breaker[("database", "warehouse")][2:6] == ["closed", "2", "-", "-"]
        links = browser.evaluate("[...document.querySelectorAll('#links a')].map(a => a.href)")
        assert any("/d/analytics-platform" in link for link in links)
        assert any("platform_breaker_state" in link for link in links)

        row = "tr[data-breaker='external_api'][data-target='hooks.example.com']"
        browser.evaluate(f"document.querySelector({json.dumps(row + ' button')}).click()")
        browser.wait_for("document.querySelector('#message').textContent.startsWith('Reset')")
        assert browser.text("#message") == "Reset external_api/hooks.example.com: open -> closed"
        assert browser.text("tr[data-breaker='external_api'][data-target='hooks.example.com'] td.state") == "closed"
    assert opened.status().state == "closed" and opened.status().failures == 0
    assert counting.status().state == "closed"


def test_breaker_api_checks_authentication_content_type_origin_and_target(api_server, breakers):
    opened, _ = breakers
    url = f"{api_server.url}/breakers/api/breakers"
    token = {"Authorization": f"Bearer {api_server.token()}"}
    body = {"breaker": "external_api", "target": "hooks.example.com"}

    assert requests.get(url, timeout=10).status_code == 401
    listed = requests.get(url, headers=token, timeout=10).json()
    assert {(b["breaker"], b["target"], b["state"]) for b in listed["breakers"]} >= {
        ("external_api", "hooks.example.com", "open")
    }
    assert requests.post(f"{url}/reset", json=body, timeout=10).status_code == 401
    forged = {"Authorization": "Bearer not-a-jwt"}
    assert requests.post(f"{url}/reset", json=body, headers=forged, timeout=10).status_code == 401
    assert requests.post(f"{url}/reset", data=body, headers=token, timeout=10).status_code == 415
    cross_site = {**token, "Origin": "https://evil.example"}
    assert requests.post(f"{url}/reset", json=body, headers=cross_site, timeout=10).status_code == 403
    unknown = {"breaker": "external_api", "target": "nowhere"}
    response = requests.post(f"{url}/reset", json=unknown, headers=token, timeout=10)
    assert response.status_code == 404 and "'nowhere'" in response.json()["detail"]
    assert opened.status().state == "open"

    response = requests.post(f"{url}/reset", json=body, headers=token, timeout=10)
    assert response.status_code == 200 and response.json()["previous_state"] == "open"
    assert opened.status().state == "closed"


def test_plugin_adds_the_page_to_the_airflow_ui(api_server):
    token = {"Authorization": f"Bearer {api_server.token()}"}
    plugins = requests.get(f"{api_server.url}/api/v2/plugins", headers=token, timeout=10).json()["plugins"]
    plugin = next(p for p in plugins if p["name"] == "platform_ui")
    assert [app["url_prefix"] for app in plugin["fastapi_apps"]] == ["/breakers"]
    (view,) = plugin["external_views"]
    assert (view["name"], view["href"], view["url_route"], view["category"]) == (
        "Circuit breakers",
        "/breakers/",
        "circuit-breakers",
        "admin",
    )
