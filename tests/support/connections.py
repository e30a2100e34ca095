"""Airflow connections (``AIRFLOW_CONN_*`` values) pointing the platform at the tests' local servers."""

from __future__ import annotations

import json
from typing import Any

import pytest


def connection_json(**fields: Any) -> str:
    """An ``AIRFLOW_CONN_*`` value in Airflow's JSON form."""
    if isinstance(fields.get("extra"), dict):
        fields["extra"] = json.dumps(fields["extra"])
    return json.dumps(fields)


def smtp_connection(host: str, port: int, **extra: Any) -> str:
    """A plain-text SMTP connection (no TLS), e.g. to the aiosmtpd sink."""
    return connection_json(
        conn_type="smtp", host=host, port=port, extra={"disable_tls": True, "disable_ssl": True, **extra}
    )


def point_channels_at(
    monkeypatch: pytest.MonkeyPatch,
    *,
    http_url: str,
    smtp_host: str,
    smtp_port: int,
    slack_path: str = "/slack",
    webhook_path: str = "",
    signing_secret: str | None = None,
    from_email: str = "airflow@example.com",
    slack_token: str = "T000/B000/XXXX",
) -> None:
    """The Slack, email and webhook connections of the platform, aimed at local servers."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_ALERTS",
        connection_json(conn_type="slackwebhook", host=f"{http_url}{slack_path}", password=slack_token),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(smtp_host, smtp_port, from_email=from_email, timeout=5)
    )
    webhook = {"signing_secret": signing_secret} if signing_secret else {}
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERT_WEBHOOK", connection_json(conn_type="http", host=f"{http_url}{webhook_path}", extra=webhook)
    )


def point_report_slack_at(monkeypatch: pytest.MonkeyPatch, slack_url: str) -> None:
    """Report Slack deliveries aimed at a local Slack server (``tests.support.servers.SlackApiServer``).

    ``slack_reports`` (the default ``REPORTS_SLACK_CONN_ID``) is an API-token connection to it and
    ``slack_ops_webhook`` an incoming webhook on it; ``#reports`` (through ``slack_reports``) and
    ``#ops`` (through ``slack_ops_webhook``) are the allowed channels.
    """
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_REPORTS",
        connection_json(conn_type="slack", password="xoxb-test", extra={"base_url": f"{slack_url}/api/"}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_OPS_WEBHOOK",
        connection_json(conn_type="slackwebhook", host=f"{slack_url}/services", password="T000/B000/XXXX"),
    )
    monkeypatch.delenv("REPORTS_SLACK_CONN_ID", raising=False)
    monkeypatch.setenv(
        "REPORTS_ALLOWED_SLACK_CHANNELS",
        json.dumps(["#reports", {"channel": "#ops", "conn_id": "slack_ops_webhook"}]),
    )
