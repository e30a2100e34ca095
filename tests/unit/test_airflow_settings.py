"""Parsing of the Astro CLI's airflow_settings.yaml and connection overrides."""

from __future__ import annotations

from devstack.airflow_settings import connection_fields_from_url, load_settings


def test_connection_fields_from_a_postgres_url():
    fields = connection_fields_from_url("postgresql://reader:s%40cret@db.internal:6543/analytics")
    assert fields == {
        "conn_type": "postgres",
        "conn_host": "db.internal",
        "conn_port": 6543,
        "conn_login": "reader",
        "conn_password": "s@cret",
        "conn_schema": "analytics",
    }


def test_settings_file_declares_the_warehouse_and_five_pools():
    settings = load_settings()
    assert "warehouse" in {c["conn_id"] for c in settings["connections"]}
    assert len(settings["pools"]) == 5
    assert all(p.get("pool_description") for p in settings["pools"])


def test_the_old_workers_alert_settings_become_connections():
    import json

    from devstack.airflow_env import legacy_channel_connections

    env = legacy_channel_connections(
        {
            "ALERT_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/XYZ",
            "ALERT_EMAIL_SMTP_HOST": "smtp.example.com",
            "ALERT_EMAIL_SMTP_PORT": "2525",
            "ALERT_EMAIL_SMTP_USER": "bot",
            "ALERT_EMAIL_SMTP_PASSWORD": "pw",
            "ALERT_EMAIL_FROM": "airflow@example.com",
        }
    )
    slack = json.loads(env["AIRFLOW_CONN_SLACK_ALERTS"])
    smtp = json.loads(env["AIRFLOW_CONN_SMTP_DEFAULT"])
    assert slack == {"conn_type": "slackwebhook", "password": "https://hooks.slack.com/services/T0/B0/XYZ"}
    assert (smtp["host"], smtp["port"], smtp["login"]) == ("smtp.example.com", 2525, "bot")
    assert json.loads(smtp["extra"]) == {"from_email": "airflow@example.com"}
    assert "AIRFLOW_CONN_ALERT_WEBHOOK" not in env

    generic = legacy_channel_connections({"ALERT_WEBHOOK_URL": "https://ops.example.com/hook"})
    assert json.loads(generic["AIRFLOW_CONN_ALERT_WEBHOOK"]) == {
        "conn_type": "http",
        "host": "https://ops.example.com/hook",
    }
    explicit = {"ALERT_WEBHOOK_URL": "https://ops.example.com/hook", "AIRFLOW_CONN_ALERT_WEBHOOK": "{}"}
    assert legacy_channel_connections(explicit) == {}
