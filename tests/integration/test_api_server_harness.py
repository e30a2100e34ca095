"""The api-server fixture serves the REST API with a token, and only with a token."""

from __future__ import annotations

import requests


def test_rest_api_lists_the_project_dags_with_a_token_and_refuses_without(api_server):
    headers = {"Authorization": f"Bearer {api_server.token()}"}
    response = requests.get(f"{api_server.url}/api/v2/pools", headers=headers, timeout=10)
    assert response.status_code == 200
    pools = {p["name"]: p["slots"] for p in response.json()["pools"]}
    assert pools["alerts"] == 4 and pools["dbt"] == 1
    assert requests.get(f"{api_server.url}/api/v2/pools", timeout=10).status_code == 401
