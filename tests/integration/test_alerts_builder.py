"""Threshold alerts without SQL from catalog objects, and the ``python -m include alerts`` commands."""

from __future__ import annotations

import pytest

from include.alerts.builder import build_catalog_alert, create_catalog_alert, split_table_name
from include.alerts.definitions import InvalidDefinition
from tests.support.alerts import TEST_SETTINGS, alert_row, clean_alert_tables, evaluate


@pytest.fixture(autouse=True)
def _tables(db, test_env):
    from tests.support.environment import grant_schema

    clean_alert_tables(db)
    db.execute('DROP SCHEMA IF EXISTS "Sales Data" CASCADE')
    db.execute('CREATE SCHEMA "Sales Data"')
    db.execute('CREATE TABLE "Sales Data"."Orders" (id int, "created at" timestamptz, note text)')
    db.execute(
        """INSERT INTO "Sales Data"."Orders" SELECT g, now() - interval '3 hours', 'x' FROM generate_series(1, 10) g"""
    )
    grant_schema(test_env, db, "Sales Data")  # the alerts' SQL reads it as the reader role
    yield
    db.execute('DROP SCHEMA IF EXISTS "Sales Data" CASCADE')


@pytest.fixture
def hook():
    from hooks.warehouse import WarehouseHook

    return WarehouseHook()


def _build(hook, kind, table, **kw):
    with hook.transaction() as conn:
        return build_catalog_alert(conn, kind, table, settings=TEST_SETTINGS, **kw)


def test_split_table_name_handles_quotes_and_defaults_to_public():
    assert split_table_name("orders") == ("public", "orders")
    assert split_table_name('"Sales Data"."Orders"') == ("Sales Data", "Orders")
    assert split_table_name('analytics."a.b"') == ("analytics", "a.b")
    with pytest.raises(ValueError, match="schema.table"):
        split_table_name("a.b.c")


def test_row_count_drop_alert_quotes_identifiers_and_fires_on_a_drop(db, hook):
    definition = _build(hook, "row_count_drop", '"Sales Data"."Orders"', drop_percent=20, options={"channels": []})
    assert definition.sql == 'SELECT count(*) FROM "Sales Data"."Orders"'
    assert (definition.condition, definition.threshold) == ("drop_pct", 20.0)
    assert definition.description == "Row count of Sales Data.Orders drops by more than 20 %"
    alert_id = create_catalog_alert(hook, definition)
    assert alert_row(db, alert_id)["source"] == "catalog"

    evaluate([alert_id])
    db.execute('DELETE FROM "Sales Data"."Orders" WHERE id <= 2')  # -20 %: not more than 20 %
    evaluate([alert_id])
    assert alert_row(db, alert_id)["state"] == "ok"
    db.execute('DELETE FROM "Sales Data"."Orders" WHERE id <= 5')  # 8 -> 5: -37.5 %
    evaluate([alert_id])
    row = alert_row(db, alert_id)
    assert row["state"] == "triggered" and row["last_value"] == 5


def test_freshness_alert_fires_when_the_newest_row_is_too_old(db, hook):
    definition = _build(
        hook, "freshness", '"Sales Data"."Orders"', timestamp_column="created at", max_age="2h", name="orders_fresh"
    )
    assert definition.threshold == 7200 and definition.condition == ">"
    assert '"created at"' in definition.sql and 'FROM "Sales Data"."Orders"' in definition.sql
    alert_id = create_catalog_alert(hook, definition)
    evaluate([alert_id])
    row = alert_row(db, alert_id)
    assert row["state"] == "triggered" and 3 * 3600 - 60 < row["last_value"] < 3 * 3600 + 60

    db.execute("""UPDATE "Sales Data"."Orders" SET "created at" = now() WHERE id = 1""")
    evaluate([alert_id])
    assert alert_row(db, alert_id)["state"] == "ok"

    db.execute('TRUNCATE "Sales Data"."Orders"')  # an empty table is stale
    evaluate([alert_id])
    assert alert_row(db, alert_id)["state"] == "triggered"

    with pytest.raises(InvalidDefinition, match="already exists"):
        create_catalog_alert(hook, definition)


@pytest.mark.parametrize(
    ("kind", "table", "extra", "message"),
    [
        (
            "row_count_drop",
            "Sales Data.Order",
            {"drop_percent": 10},
            "no table or view Sales Data.Order in the warehouse; did you mean Sales Data.Orders",
        ),
        (
            "freshness",
            '"Sales Data"."Orders"',
            {"timestamp_column": "note", "max_age": "1h"},
            "field 'timestamp_column': column 'note' is text; expected a date or timestamp",
        ),
        (
            "freshness",
            '"Sales Data"."Orders"',
            {"timestamp_column": "missing", "max_age": "1h"},
            "has no column 'missing'",
        ),
        (
            "freshness",
            '"Sales Data"."Orders"',
            {"timestamp_column": "created at", "max_age": "soon"},
            "field 'max_age': 'soon' is not a duration",
        ),
        ("row_count_drop", '"Sales Data"."Orders"', {"drop_percent": 0}, "field 'drop_percent'"),
        ("row_count_drop", "x'; DROP TABLE y; --", {"drop_percent": 5}, "no table or view public.x'; DROP TABLE y; --"),
    ],
)
def test_bad_catalog_alert_requests_name_the_field(hook, kind, table, extra, message):
    with pytest.raises(InvalidDefinition) as caught:
        _build(hook, kind, table, **extra)
    assert message in str(caught.value)


def test_cli_creates_lists_and_checks_alerts(db, capsys):
    from include.__main__ import main

    code = main(
        [
            "alerts", "create-freshness", "--table", '"Sales Data"."Orders"', "--column", "created at",
            "--max-age", "90m", "--name", "cli_fresh", "--slack", "--email", "ops@example.com",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "created alert 'cli_fresh'" in out
    row = db.execute("SELECT threshold, channels, source FROM analytics_alerts WHERE name = 'cli_fresh'").fetchone()
    assert row[0] == 5400 and row[2] == "catalog"
    assert row[1] == [
        {"type": "slack", "connection": "slack_alerts"},
        {"type": "email", "to": ["ops@example.com"], "connection": "smtp_default"},
    ]

    assert main(["alerts", "check", "cli_fresh"]) == 0
    assert "MET (would fire)" in capsys.readouterr().out
    assert (
        alert_row(db, db.execute("SELECT id FROM analytics_alerts WHERE name = 'cli_fresh'").fetchone()[0])["state"]
        == "unknown"
    )

    assert main(["alerts", "create-row-count", "--table", "public.nope", "--drop-pct", "10"]) == 1
    assert "cli: field 'table': no table or view public.nope" in capsys.readouterr().err

    assert main(["alerts", "list"]) == 0
    assert "cli_fresh" in capsys.readouterr().out


def test_cli_validate_reports_errors_without_a_database(tmp_path, capsys):
    from include.__main__ import main

    (tmp_path / "a.yaml").write_text("alerts:\n  - {name: x, sql: SELECT 1, condition: '>>'}\n")
    assert main(["alerts", "validate", "--dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "a.yaml: alert 'x': field 'condition'" in captured.err


def test_cli_validate_with_connections_names_channels_whose_connection_is_missing(tmp_path, capsys, monkeypatch):
    from include.__main__ import main
    from tests.support.connections import connection_json, smtp_connection

    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection("127.0.0.1", 2525))
    monkeypatch.setenv("AIRFLOW_CONN_OPS_HOOK", connection_json(conn_type="smtp", host="127.0.0.1"))
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_ALERTS", raising=False)
    (tmp_path / "a.yaml").write_text(
        "alerts:\n"
        "  - name: wired\n    sql: SELECT 1\n    condition: '>'\n    threshold: 0\n"
        "    channels:\n"
        "      - {type: email, to: [a@example.com]}\n"  # smtp_default: defined
        "      - {type: slack}\n"  # slack_alerts: missing
        "      - {type: webhook, connection: ops_hook}\n"  # an SMTP connection for a webhook
    )
    assert main(["alerts", "validate", "--dir", str(tmp_path)]) == 0  # without access to connections: the YAML only
    capsys.readouterr()

    assert main(["alerts", "validate", "--dir", str(tmp_path), "--connections"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "error: a.yaml: alert 'wired': field 'channels[1].connection': connection 'slack_alerts' (slack channel) "
        "is not defined in Airflow; create it or fix the channel",
        "error: a.yaml: alert 'wired': field 'channels[2].connection': connection 'ops_hook' is of type 'smtp'; "
        "a webhook channel needs one of http, https",
    ]
