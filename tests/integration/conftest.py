"""Fixtures shared by the monitoring integration tests."""

from __future__ import annotations

import json

import pytest

from tests.support.connections import point_channels_at


@pytest.fixture
def monitored_services(monkeypatch, smtp_server, http_server, api_server):
    """Connections of every health-checked channel and of the REST API, pointing at real local servers."""
    point_channels_at(
        monkeypatch,
        http_url=http_server.url,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        slack_path="",
        slack_token="T000/B000/secret-token",
    )
    api = {"conn_type": "http", "host": api_server.url, "login": "admin", "password": api_server.password}
    monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API", json.dumps(api))
    return smtp_server, http_server
