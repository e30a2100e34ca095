"""Alerts as code: YAML files synced into analytics_alerts; bad files are named and skipped."""

from __future__ import annotations

import textwrap
from dataclasses import replace

import pytest

from include.alerts.sync import sync_definitions
from tests.support.alerts import TEST_SETTINGS, clean_alert_tables, make_alert

GOOD = """
alerts:
  - name: orders_stale
    description: No new orders for two hours
    sql: SELECT 7200
    condition: ">"
    threshold: 3600
    severity: critical
    owner: orders@example.com
    consecutive_checks: 2
    rearm: 1h
    check_interval: 10m
    timeout: 20s
    muted_until: 2030-01-01T00:00:00Z
    channels:
      - type: slack
        connection: slack_orders
      - type: email
        to: orders@example.com
  - name: users_missing
    sql: SELECT NULL
    condition: is null
"""

MIXED = """
alerts:
  - name: fine_one
    sql: SELECT 1
    condition: "=="
    threshold: 1
  - name: broken_condition
    sql: SELECT 1
    condition: bigger than
    threshold: 1
  - name: broken_channel
    sql: SELECT 1
    condition: ">"
    threshold: 0
    channels:
      - type: email
"""


@pytest.fixture(autouse=True)
def _clean(db):
    clean_alert_tables(db)


def _write(directory, name: str, text: str) -> None:
    (directory / name).write_text(textwrap.dedent(text))


def _sync(directory, run_id: str = "sync-test"):
    return sync_definitions(
        settings=replace(TEST_SETTINGS, minimum_interval=60), directory=directory, dag_run_id=run_id
    )


def _alerts(db) -> dict[str, dict]:
    from psycopg.rows import dict_row

    with db.cursor(row_factory=dict_row) as cur:
        return {r["name"]: r for r in cur.execute("SELECT * FROM analytics_alerts ORDER BY name")}


def test_valid_files_sync_and_a_bad_alert_is_named_while_the_others_sync(db, tmp_path):
    _write(tmp_path, "good.yaml", GOOD)
    _write(tmp_path, "mixed.yml", MIXED)
    _write(tmp_path, "broken.yaml", "alerts:\n  - name: [unclosed\n")

    report = _sync(tmp_path, run_id="sync-errors-test")

    assert sorted(report.created) == ["fine_one", "orders_stale", "users_missing"]
    messages = sorted(str(e) for e in report.errors)
    assert any(m.startswith("broken.yaml: not valid YAML") for m in messages), messages
    assert "mixed.yml: alert 'broken_condition': field 'condition': 'bigger than' is not one of" in "\n".join(messages)
    assert "mixed.yml: alert 'broken_channel': field 'channels[0].to': is required" in messages
    alerts = _alerts(db)
    orders = alerts["orders_stale"]
    assert orders["source"] == "yaml" and orders["source_file"] == "good.yaml"
    assert (orders["rearm_seconds"], orders["check_interval_seconds"], orders["timeout_seconds"]) == (3600, 600, 20)
    assert orders["consecutive_checks"] == 2 and orders["severity"] == "critical"
    assert orders["muted_until"].year == 2030
    assert orders["channels"] == [
        {"type": "slack", "connection": "slack_orders"},
        {"type": "email", "to": ["orders@example.com"], "connection": "smtp_default"},
    ]
    assert alerts["users_missing"]["condition"] == "is_null"

    log = db.execute(
        "SELECT status, error FROM analytics_refresh_log WHERE job = 'alerts.sync_definitions' AND dag_run_id = %s",
        ["sync-errors-test"],
    ).fetchall()
    assert len(log) == 1 and log[0][0] == "failed"
    assert "broken_channel" in log[0][1] and "broken.yaml" in log[0][1]
    assert len(report.new_errors) == 3

    again = _sync(tmp_path)  # the same errors again: nothing new to alert on
    assert len(again.errors) == 3 and again.new_errors == []


def test_changes_update_unchanged_are_left_and_removed_alerts_are_disabled(db, tmp_path):
    _write(tmp_path, "good.yaml", GOOD)
    _write(tmp_path, "other.yaml", "alerts:\n  - {name: other_alert, sql: SELECT 2, condition: '>', threshold: 1}\n")
    _sync(tmp_path)
    db.execute("UPDATE analytics_alerts SET consecutive_met = 1 WHERE name = 'orders_stale'")

    again = _sync(tmp_path)
    assert sorted(again.unchanged) == ["orders_stale", "other_alert", "users_missing"] and not again.updated

    _write(
        tmp_path,
        "good.yaml",
        GOOD.replace("threshold: 3600", "threshold: 1800").replace(
            "  - name: users_missing\n    sql: SELECT NULL\n    condition: is null\n", ""
        ),
    )
    _write(tmp_path, "other.yaml", "alerts: [oops")  # unreadable now: its alerts are left alone
    changed = _sync(tmp_path)

    assert changed.updated == ["orders_stale"] and changed.disabled == ["users_missing"]
    alerts = _alerts(db)
    assert alerts["orders_stale"]["threshold"] == 1800 and alerts["orders_stale"]["consecutive_met"] == 0
    assert alerts["users_missing"]["enabled"] is False
    assert alerts["other_alert"]["enabled"] is True


def test_a_yaml_alert_never_overwrites_an_alert_created_elsewhere(db, tmp_path):
    make_alert(db, "orders_stale", "SELECT 1", ">", 0)
    _write(tmp_path, "good.yaml", GOOD)
    report = _sync(tmp_path)
    assert [str(e) for e in report.errors] == [
        "good.yaml: alert 'orders_stale': field 'name': an alert with this name already exists "
        "(created from the table); rename one of them"
    ]
    assert _alerts(db)["orders_stale"]["sql"] == "SELECT 1"
    assert "users_missing" in report.created


def test_rules_beyond_the_schema(tmp_path):
    from include.alerts.definitions import load_definitions

    _write(
        tmp_path,
        "rules.yaml",
        """
        alerts:
          - {name: no_threshold, sql: SELECT 1, condition: '>'}
          - {name: too_often, sql: SELECT 1, condition: is_null, check_interval: 5s}
          - {name: two_statements, sql: 'SELECT 1; DELETE FROM x', condition: is_null}
          - {name: too_slow, sql: SELECT 1, condition: is_null, timeout: 1d}
          - {name: dup, sql: SELECT 1, condition: is_null}
          - {name: dup, sql: SELECT 2, condition: is_null}
          - {sql: SELECT 1, condition: is_null}
        """,
    )
    loaded = load_definitions(tmp_path, replace(TEST_SETTINGS, minimum_interval=60))
    assert sorted(str(e) for e in loaded.errors) == [
        "rules.yaml: alert '#7': field 'name': is required",
        "rules.yaml: alert 'dup': field 'name': already defined in rules.yaml",
        "rules.yaml: alert 'no_threshold': field 'threshold': condition '>' needs a threshold",
        "rules.yaml: alert 'too_often': field 'check_interval': 5s is below the minimum interval of 60s",
        "rules.yaml: alert 'too_slow': field 'timeout': 86400s is above the maximum of 300s",
        "rules.yaml: alert 'two_statements': field 'sql': must be exactly one statement, found 2",
    ]
    assert [d.name for _, d in loaded.definitions] == ["dup"]


def test_the_shipped_definitions_are_valid():
    from include.alerts.definitions import load_definitions
    from include.alerts.settings import AlertSettings

    loaded = load_definitions(AlertSettings().definitions_dir, AlertSettings())
    assert loaded.errors == [] and loaded.definitions
