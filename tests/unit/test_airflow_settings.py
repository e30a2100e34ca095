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
