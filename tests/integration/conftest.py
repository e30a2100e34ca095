"""Fixtures shared by the monitoring integration tests."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def monitored_services(monkeypatch, smtp_server, http_server, api_server):
    """Connections of every health-checked channel and of the REST API, pointing at real local servers."""
    smtp = {
        "conn_type": "smtp",
        "host": smtp_server.host,
        "port": smtp_server.port,
        "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 5},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(smtp))
    slack = {"conn_type": "slackwebhook", "host": http_server.url, "password": "T000/B000/secret-token"}
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps(slack))
    monkeypatch.setenv("AIRFLOW_CONN_ALERT_WEBHOOK", json.dumps({"conn_type": "http", "host": http_server.url}))
    api = {"conn_type": "http", "host": api_server.url, "login": "admin", "password": api_server.password}
    monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API", json.dumps(api))
    return smtp_server, http_server
