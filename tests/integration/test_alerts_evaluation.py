"""Alert evaluation against the real warehouse: conditions, hysteresis, rearm, recovery, errors, mute, dry run."""

from __future__ import annotations

import json

import pytest

from tests.support.alerts import (
    alert_row,
    clean_alert_tables,
    evaluate,
    events,
    later,
    make_alert,
    notifications,
    states,
)

SLACK = [{"type": "slack"}]


@pytest.fixture(autouse=True)
def _clean(db):
    clean_alert_tables(db)
    db.execute("DROP TABLE IF EXISTS alert_test_values")
    db.execute("CREATE TABLE alert_test_values (k text PRIMARY KEY, v double precision)")
    yield
    db.execute("DROP TABLE IF EXISTS alert_test_values")


def _set(db, key: str, value: float | None) -> None:
    db.execute(
        "INSERT INTO alert_test_values VALUES (%s, %s) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v", [key, value]
    )


def _slack_fields(payload: dict) -> list[str]:
    return [field["text"] for block in payload["blocks"] for field in block.get("fields", [])]


def _value_sql(key: str) -> str:
    return f"SELECT v FROM alert_test_values WHERE k = '{key}'"


# (condition, threshold, sql value, fires?)
CASES = [
    (">", 5, "6", True),
    (">", 6, "6", False),
    (">=", 6, "6", True),
    (">=", 6.5, "6", False),
    ("<", 7, "6", True),
    ("<", 6, "6", False),
    ("<=", 6, "6", True),
    ("<=", 5.9, "6", False),
    ("==", 6, "6", True),
    ("==", 6, "6.01", False),
    ("!=", 6, "7", True),
    ("!=", 6, "6", False),
    ("is_null", None, "NULL::int", True),
    ("is_null", None, "0", False),
    ("is not null", None, "'text'", True),
    ("is_not_null", None, "NULL::text", False),
    (">", 0, "true", True),  # booleans count as 1 / 0
    ("<", 10, "'4.5'", True),  # numeric text is a number
    (">", 0, "(SELECT count(*) FROM pg_class WHERE relname LIKE 'pg_%')", True),  # % is not a placeholder
]


def test_each_comparison_and_null_condition(db):
    ids = {}
    for index, (condition, threshold, value, _) in enumerate(CASES):
        ids[index] = make_alert(db, f"case_{index:02d}", f"SELECT {value}", condition, threshold, channels=SLACK)

    summary = evaluate(list(ids.values()))

    assert summary.evaluated == len(CASES) and summary.errors == []
    assert summary.fired == {"warning": sum(fires for *_, fires in CASES)}  # the alerts.triggered metric
    for index, (condition, threshold, value, fires) in enumerate(CASES):
        row = alert_row(db, ids[index])
        expected = "triggered" if fires else "ok"
        assert row["state"] == expected, f"{condition} {threshold} on {value}: {row['state']}"
        kinds = [e["kind"] for e in events(db, ids[index])]
        assert kinds == (["fired"] if fires else ["check"])
        assert len(notifications(db, ids[index])) == (1 if fires else 0)


def test_no_rows_counts_as_null_and_comparisons_on_null_are_errors(db):
    empty_null = make_alert(db, "no_rows_is_null", "SELECT 1 WHERE false", "is_null")
    empty_cmp = make_alert(db, "no_rows_compared", "SELECT 1 WHERE false", ">", 0)

    evaluate([empty_null, empty_cmp])

    assert alert_row(db, empty_null)["state"] == "triggered"
    row = alert_row(db, empty_cmp)
    assert row["state"] == "error" and "no value" in row["last_error"] and "is_null" in row["last_error"]


def test_change_conditions_compare_with_the_previous_value(db):
    for key in ("change", "drop", "rise"):
        _set(db, key, 100)
    change = make_alert(db, "changed", _value_sql("change"), "change_pct", 20, channels=SLACK)
    drop = make_alert(db, "dropped", _value_sql("drop"), "drop_pct", 20, channels=SLACK)
    rise = make_alert(db, "rose", _value_sql("rise"), "rise_pct", 20, channels=SLACK)
    ids = [change, drop, rise]

    evaluate(ids)  # first check: nothing to compare with
    assert states(db) == {"changed": "ok", "dropped": "ok", "rose": "ok"}

    _set(db, "change", 130)  # +30 %
    _set(db, "drop", 130)  # a rise does not trigger a drop alert
    _set(db, "rise", 110)  # +10 % only
    evaluate(ids)
    assert states(db) == {"changed": "triggered", "dropped": "ok", "rose": "ok"}

    _set(db, "change", 131)
    _set(db, "drop", 90)  # -30.8 %
    _set(db, "rise", 140)  # +27 %
    evaluate(ids)
    assert states(db) == {"changed": "ok", "dropped": "triggered", "rose": "triggered"}
    drop_event = events(db, drop)[-1]
    assert drop_event["kind"] == "fired" and drop_event["previous_value"] == 130 and drop_event["value"] == 90
    payload = notifications(db, drop)[0]["payload"]
    assert "dropped by more than 20 %" in payload["text"]
    assert "*Previous value*\n130" in _slack_fields(payload)
    assert [n["kind"] for n in notifications(db, change)] == ["fired", "recovered"]


def test_consecutive_checks_before_firing_and_before_recovery(db):
    _set(db, "load", 50)
    alert = make_alert(
        db, "flappy", _value_sql("load"), ">", 10, consecutive_checks=3, recovery_checks=2, channels=SLACK
    )

    for _ in range(2):
        evaluate([alert])
    assert alert_row(db, alert)["state"] == "ok" and alert_row(db, alert)["consecutive_met"] == 2
    assert [e["note"] for e in events(db, alert)] == [
        "condition met 1 of 3 consecutive checks",
        "condition met 2 of 3 consecutive checks",
    ]
    assert notifications(db, alert) == []

    evaluate([alert])
    row = alert_row(db, alert)
    assert row["state"] == "triggered" and row["triggered_since"] is not None
    assert [n["kind"] for n in notifications(db, alert)] == ["fired"]

    _set(db, "load", 1)
    evaluate([alert])
    assert alert_row(db, alert)["state"] == "triggered"  # one clear check is not enough
    evaluate([alert])
    assert alert_row(db, alert)["state"] == "ok"
    assert [e["kind"] for e in events(db, alert)] == ["check", "check", "fired", "check", "recovered"]
    recovery = notifications(db, alert)[-1]
    assert recovery["kind"] == "recovered" and recovery["status"] == "pending"
    assert recovery["payload"]["text"].startswith("[RECOVERED][warning] flappy: value 1")
    assert any(field.startswith("*Was firing since*") for field in _slack_fields(recovery["payload"]))


def test_a_met_check_between_clear_ones_resets_the_streak(db):
    _set(db, "x", 50)
    alert = make_alert(db, "streak", _value_sql("x"), ">", 10, consecutive_checks=2, channels=SLACK)
    evaluate([alert])
    _set(db, "x", 1)
    evaluate([alert])
    _set(db, "x", 50)
    evaluate([alert])
    assert alert_row(db, alert)["state"] == "ok"
    evaluate([alert])
    assert alert_row(db, alert)["state"] == "triggered"


def test_rearm_repeats_the_notification_while_still_firing(db):
    alert = make_alert(db, "rearming", "SELECT 100", ">", 10, rearm="10m", channels=SLACK)

    evaluate([alert])
    evaluate([alert], now=later(300))  # 5 minutes later: still inside the rearm interval
    assert [n["kind"] for n in notifications(db, alert)] == ["fired"]

    evaluate([alert], now=later(700))  # past 10 minutes since the last notification
    evaluate([alert], now=later(900))
    assert [n["kind"] for n in notifications(db, alert)] == ["fired", "rearmed"]
    assert [e["kind"] for e in events(db, alert)] == ["fired", "check", "rearmed", "check"]
    rearmed = notifications(db, alert)[-1]["payload"]
    assert rearmed["text"].startswith("[STILL FIRING]")
    assert any(field.startswith("*Firing since*") for field in _slack_fields(rearmed))


def test_without_rearm_a_firing_is_notified_once(db):
    alert = make_alert(db, "once", "SELECT 100", ">", 10, channels=SLACK)
    for offset in (0, 3600, 86400):
        evaluate([alert], now=later(offset))
    assert [n["kind"] for n in notifications(db, alert)] == ["fired"]


def test_mute_holds_notifications_and_a_firing_still_on_is_sent_when_it_ends(db):
    alert = make_alert(db, "muted", "SELECT 100", ">", 10, muted_until=later(3600).isoformat(), channels=SLACK)

    evaluate([alert])
    assert alert_row(db, alert)["state"] == "triggered"
    assert notifications(db, alert) == []
    assert events(db, alert)[0]["note"].startswith("muted until")

    evaluate([alert], now=later(4000))
    assert [n["kind"] for n in notifications(db, alert)] == ["fired"]
    assert "notified late" in events(db, alert)[-1]["note"]


def test_bad_alerts_go_to_error_once_and_do_not_affect_the_others(db):
    _set(db, "keep", 1)
    owner = "owner@example.com"
    bad = {
        "syntax": ("SELEC 1", "syntax error"),
        "writes": ("DELETE FROM alert_test_values", "DELETE statements never run"),
        "writes_in_cte": ("WITH d AS (DELETE FROM alert_test_values RETURNING 1) SELECT count(*) FROM d", "read-only"),
        "slow": ("SELECT pg_sleep(5)", "longer than its timeout of 0.3s"),
        "two_statements": ("SELECT 1; SELECT 2", "exactly one statement"),
        "many_rows": ("SELECT generate_series(1, 3)", "more than one row"),
        "two_columns": ("SELECT 1, 2", "2 columns"),
        "not_a_number": ("SELECT 'abc'", "not a number"),
    }
    ids = {}
    for name, (sql, _) in bad.items():
        ids[name] = make_alert(db, f"bad_{name}", "SELECT 1", ">", 0, owner=owner, timeout=0.3, channels=SLACK)
        db.execute("UPDATE analytics_alerts SET sql = %s WHERE id = %s", [sql, ids[name]])  # bypass validation
    good = make_alert(db, "good", _value_sql("keep"), ">", 0, channels=SLACK)
    all_ids = [*ids.values(), good]

    summary = evaluate(all_ids)

    assert alert_row(db, good)["state"] == "triggered"
    for name, (_, expected) in bad.items():
        row = alert_row(db, ids[name])
        assert row["state"] == "error", name
        assert expected in row["last_error"], (name, row["last_error"])
        event = events(db, ids[name])[0]
        assert event["kind"] == "error" and expected in event["error"]
        [told] = notifications(db, ids[name])
        assert told["kind"] == "error" and told["channel_type"] == "email" and told["channel"]["to"] == [owner]
        assert expected in told["payload"]["text"]
    assert len(summary.errors) == len(bad)
    assert db.execute("SELECT count(*) FROM alert_test_values").fetchone()[0] == 1  # the DELETE was refused

    evaluate(all_ids)  # still failing: the owner is not told again
    for name in bad:
        assert len(notifications(db, ids[name])) == 1
        assert events(db, ids[name])[-1]["note"] == "still failing"

    db.execute("UPDATE analytics_alerts SET sql = 'SELECT 0' WHERE id = %s", [ids["syntax"]])
    evaluate([ids["syntax"]])
    row = alert_row(db, ids["syntax"])
    assert row["state"] == "ok" and row["last_error"] is None
    assert events(db, ids["syntax"])[-1]["kind"] == "resolved"


def test_errors_go_to_the_channels_when_the_owner_is_not_an_email(db):
    alert = make_alert(db, "team_owned", "SELECT 1", ">", 0, owner="data-team", channels=SLACK)
    db.execute("UPDATE analytics_alerts SET sql = 'SELECT nope' WHERE id = %s", [alert])
    evaluate([alert])
    [told] = notifications(db, alert)
    assert told["kind"] == "error" and told["channel_type"] == "slack"
    assert "ALERT ERROR" in told["payload"]["text"]


def test_a_retried_run_does_not_count_a_check_twice(db):
    alert = make_alert(db, "counted", "SELECT 5", ">", 1, consecutive_checks=2, channels=SLACK)
    first = evaluate([alert], run_id="run-a")
    again = evaluate([alert], run_id="run-a")
    assert (first.evaluated, again.evaluated, again.skipped) == (1, 0, 1)
    assert alert_row(db, alert)["consecutive_met"] == 1 and len(events(db, alert)) == 1


def test_dry_run_alert_records_notifications_without_sending_and_run_level_dry_run_changes_nothing(db):
    trial = make_alert(db, "trial", "SELECT 5", ">", 1, dry_run=True, channels=SLACK)
    real = make_alert(db, "real", "SELECT 5", ">", 1, channels=SLACK)

    evaluate([real], dry_run=True)
    assert alert_row(db, real)["state"] == "unknown"
    [preview] = notifications(db, real)
    assert preview["status"] == "dry_run" and "[DRY RUN]" in preview["payload"]["text"]
    assert "state not changed" in events(db, real)[0]["note"]

    evaluate([trial, real])
    assert states(db) == {"real": "triggered", "trial": "triggered"}
    assert [n["status"] for n in notifications(db, trial)] == ["dry_run"]
    assert [n["status"] for n in notifications(db, real)] == ["dry_run", "pending"]


def test_messages_say_what_fired_value_threshold_since_and_link(db):
    alert = make_alert(
        db,
        "orders_backlog",
        "SELECT 1234.5",
        ">",
        1000,
        severity="critical",
        description="Unprocessed orders",
        channels=[{"type": "slack"}, {"type": "email", "to": "oncall@example.com"}, {"type": "webhook"}],
        subject_template="{{ alert_name }} is {{ shown_value }}",
        message_template="Backlog above {{ threshold_text }} since {{ since }}",
    )
    evaluate([alert])
    slack, email, webhook = notifications(db, alert)
    since = alert_row(db, alert)["triggered_since"]

    assert email["payload"]["subject"] == "orders_backlog is 1234.5"
    assert "Value: 1234.5" in email["payload"]["text"] and "Condition: value > 1000" in email["payload"]["text"]
    assert "<td>1234.5</td>" in email["payload"]["html"] and "<td>value &gt; 1000</td>" in email["payload"]["html"]
    for text in (email["payload"]["text"], email["payload"]["html"]):
        assert "http://airflow.test/" in text
    assert f"Firing since: {since:%Y-%m-%d %H:%M:%S}" in email["payload"]["text"]
    assert "Backlog above 1000 since" in email["payload"]["text"]
    assert slack["payload"]["blocks"][0]["text"]["text"] == ":red_circle: FIRING: orders_backlog"
    body = webhook["payload"]["body"]
    assert body["event"] == "alert.fired" and body["value"] == 1234.5 and body["alert"]["threshold"] == 1000
    assert body["url"].startswith("http://airflow.test/") and body["since"] == since.isoformat()
    assert body["incident_key"] == f"alert-{alert}-{since:%Y%m%dT%H%M%SZ}"


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ nope }}", "UndefinedError: 'nope' is undefined"),
        ("{% for i in range(10000) %}{{ alert_name * 200 }}{% endfor %}", "the output is longer than 16384 characters"),
        ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", "rendering took longer"),
    ],
)
def test_a_template_that_fails_or_passes_its_limits_falls_back_to_the_default_text(db, template, reason):
    """Written into the table past validation (the sync refuses such templates): rendering still stays bounded."""
    channels = [*SLACK, {"type": "email", "to": ["team@example.com"]}]
    alert = make_alert(db, "templated", "SELECT 5", ">", 1, channels=channels)
    db.execute("UPDATE analytics_alerts SET message_template = %s WHERE id = %s", [template, alert])

    evaluate([alert])

    slack, email = notifications(db, alert)
    assert slack["payload"]["text"].startswith("[FIRING][warning] templated: value 5")
    for sent in (slack, email):  # what the template produced is in no payload
        assert len(json.dumps(sent["payload"])) < 10_000
    assert f"Note: message template failed ({reason}" in email["payload"]["text"]


def test_due_alerts_respect_check_interval_enabled_and_the_run(db):
    from hooks.warehouse import WarehouseHook
    from include.alerts.evaluate import due_alert_ids, plan_batches

    every_run = make_alert(db, "every_run", "SELECT 1", ">", 0)
    hourly = make_alert(db, "hourly", "SELECT 1", ">", 0, check_interval="1h")
    disabled = make_alert(db, "disabled", "SELECT 1", ">", 0, enabled=False)
    hook = WarehouseHook()

    assert due_alert_ids(hook, "run-1") == [every_run, hourly]
    evaluate([every_run, hourly], run_id="run-1")
    assert due_alert_ids(hook, "run-1") == []  # a retry of the same run has nothing left
    assert due_alert_ids(hook, "run-2") == [every_run]  # the hourly one checked a moment ago
    assert due_alert_ids(hook, "run-2", ["hourly", "disabled"]) == [hourly]  # named: checked now, if enabled
    db.execute("UPDATE analytics_alerts SET last_evaluated_at = now() - interval '55 minutes' WHERE id = %s", [hourly])
    assert due_alert_ids(hook, "run-3") == [every_run, hourly]  # within 10 percent of its interval
    assert disabled not in due_alert_ids(hook, "run-4")
    assert plan_batches(list(range(1, 8)), 3) == [[1, 2, 3], [4, 5, 6], [7]]
    assert [len(b) for b in plan_batches(list(range(200)), 100)] == [50, 50, 50, 50]  # every pool slot busy
    assert [len(b) for b in plan_batches(list(range(60)), 100)] == [25, 25, 10]  # but no tiny batches
    assert [len(b) for b in plan_batches(list(range(1000)), 100)] == [100] * 10


def test_history_past_each_alerts_retention_is_purged_but_undelivered_notifications_stay(db):
    from include.alerts.outbox import purge_history

    short = make_alert(db, "short_memory", "SELECT 5", ">", 1, log_retention_days=1, channels=SLACK)
    long = make_alert(db, "long_memory", "SELECT 5", ">", 1, log_retention_days=30, channels=SLACK)
    evaluate([short, long])  # fired: one pending notification each
    evaluate([short, long])  # a plain check each
    db.execute("UPDATE analytics_alert_events SET evaluated_at = now() - interval '3 days'")
    db.execute("UPDATE analytics_alert_notifications SET status = 'delivered' WHERE alert_id = %s", [long])

    assert purge_history() == 1  # only short_memory's plain check: its firing's notification is still pending
    assert [e["kind"] for e in events(db, short)] == ["fired"]
    assert len(events(db, long)) == 2
    db.execute("UPDATE analytics_alert_notifications SET status = 'delivered'")
    assert purge_history() == 1 and events(db, short) == [] and notifications(db, short) == []


def test_no_row_lock_is_held_while_a_template_renders(db, database_url, monkeypatch):
    """At the moment the alert's template renders, another session can lock the alert's row at once."""
    import psycopg

    from include.alerts import templates

    alert = make_alert(db, "rendered", "SELECT 5", ">", 1, message_template="{{ alert_name }} is {{ shown_value }}")
    db.execute("UPDATE analytics_alerts SET channels = %s WHERE id = %s", [json.dumps(SLACK), alert])
    render, seen = templates.render, []

    def render_and_try_the_lock(source, variables, **limits):
        with psycopg.connect(database_url, autocommit=True) as other:
            try:
                other.execute("SELECT 1 FROM analytics_alerts WHERE id = %s FOR UPDATE NOWAIT", [alert])
                seen.append("free")
            except psycopg.errors.LockNotAvailable:
                seen.append("locked")
        return render(source, variables, **limits)

    monkeypatch.setattr(templates, "render", render_and_try_the_lock)
    evaluate([alert])

    assert seen == ["free"]
    [slack] = notifications(db, alert)
    assert "rendered is 5" in json.dumps(slack["payload"])
