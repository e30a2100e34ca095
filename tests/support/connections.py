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
