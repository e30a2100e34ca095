"""Pure alert logic: conditions, the state machine, durations, retry delays, webhook signatures."""

from __future__ import annotations

import math
import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from delivery.webhook import sign, verify_signature
from include.alerts.conditions import (
    ConditionError,
    change_percent,
    condition_met,
    describe_condition,
    format_number,
    normalize_condition,
    to_query_value,
)
from include.alerts.definitions import parse_duration
from include.alerts.outbox import retry_delay
from include.alerts.settings import AlertSettings
from include.alerts.state import AlertPolicy, AlertSnapshot, Outcome, next_state

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_condition_names_and_aliases():
    assert normalize_condition("IS  NOT NULL") == "is_not_null"
    assert normalize_condition("greater than") == ">"
    assert normalize_condition("<>") == "!="
    with pytest.raises(ValueError, match=r"unknown condition 'bigger'; expected one of >, >="):
        normalize_condition("bigger")


def test_values_from_the_database():
    from decimal import Decimal

    assert to_query_value(Decimal("1.5")).number == 1.5
    assert to_query_value(True).number == 1.0
    assert to_query_value("12").number == 12.0
    assert to_query_value("abc").number is None and to_query_value("abc").text == "abc"
    assert to_query_value(None).is_null
    assert to_query_value(float("nan")).number is None


def test_change_percent_and_conditions():
    assert change_percent(80, 100) == -20
    assert change_percent(5, 0) == math.inf and change_percent(0, 0) == 0
    value = to_query_value(70)
    assert condition_met("drop_pct", 20, value, previous=100)
    assert not condition_met("drop_pct", 30, value, previous=100)
    assert not condition_met("rise_pct", 20, value, previous=100)
    assert condition_met("change_pct", 20, value, previous=100)
    assert not condition_met("change_pct", 20, value, previous=None)  # first check
    with pytest.raises(ConditionError, match="no value"):
        condition_met(">", 1, to_query_value(None))
    with pytest.raises(ConditionError, match="not a number"):
        condition_met(">", 1, to_query_value("abc"))


def test_descriptions_and_numbers():
    assert describe_condition(">", 10.0) == "value > 10"
    assert describe_condition("drop_pct", 20) == "dropped by more than 20 % since the previous check"
    assert format_number(1 / 3) == "0.333333" and format_number(None) == "null"


def test_durations():
    assert parse_duration("90s") == 90 and parse_duration("15m") == 900 and parse_duration("1.5h") == 5400
    assert parse_duration(30) == 30
    for bad in ("soon", "-5m", 0, True):
        with pytest.raises(ValueError):
            parse_duration(bad)


STEP = timedelta(minutes=5)


def _run(outcomes, policy: AlertPolicy | None = None, step=STEP):
    policy = policy or AlertPolicy()
    snapshot, transitions = AlertSnapshot(), []
    for index, outcome in enumerate(outcomes):
        transition = next_state(snapshot, policy, outcome, NOW + index * step)
        transitions.append((transition.kind, transition.notify, transition.after.state))
        snapshot = transition.after
    return transitions


MET, CLEAR, ERROR = Outcome(met=True, value=1), Outcome(met=False, value=0), Outcome(error="boom")


def test_state_machine_fires_after_consecutive_checks_and_recovers_after_recovery_checks():
    assert _run(
        [MET, MET, CLEAR, MET, MET, MET, CLEAR, CLEAR], AlertPolicy(consecutive_checks=2, recovery_checks=2)
    ) == [
        ("check", None, "ok"),
        ("fired", "fired", "triggered"),
        ("check", None, "triggered"),
        ("check", None, "triggered"),  # the clear streak was broken: still firing
        ("check", None, "triggered"),
        ("check", None, "triggered"),
        ("check", None, "triggered"),
        ("recovered", "recovered", "ok"),
    ]


def test_state_machine_rearm_error_once_and_resolve():
    policy = AlertPolicy(rearm_seconds=600)
    assert _run([MET, MET, MET, ERROR, ERROR, CLEAR], policy) == [
        ("fired", "fired", "triggered"),
        ("check", None, "triggered"),  # 5 minutes: not yet
        ("rearmed", "rearmed", "triggered"),  # 10 minutes since the last notification
        ("error", "error", "error"),
        ("check", None, "error"),  # told once
        ("resolved", None, "ok"),
    ]


def test_state_machine_unknown_to_ok_is_silent_and_mute_delays_the_firing():
    assert _run([CLEAR]) == [("check", None, "ok")]
    muted = AlertPolicy(muted_until=NOW + timedelta(minutes=7))
    assert _run([MET, MET, MET, CLEAR], muted) == [
        ("fired", None, "triggered"),
        ("check", None, "triggered"),
        ("fired", "fired", "triggered"),  # mute over, still firing: told now
        ("recovered", "recovered", "ok"),
    ]
    # a firing that ended during the mute is never announced, and neither is its recovery
    assert _run([MET, CLEAR], AlertPolicy(muted_until=NOW + timedelta(hours=1))) == [
        ("fired", None, "triggered"),
        ("recovered", None, "ok"),
    ]


def test_retry_delay_doubles_with_jitter_and_a_cap():
    settings = AlertSettings(retry_base=30, retry_max=300)
    rng = random.Random(1)
    delays = [retry_delay(n, settings, rng) for n in range(1, 7)]
    for delay, expected in zip(delays, [30, 60, 120, 240, 300, 300], strict=True):
        assert expected * 0.9 <= delay <= expected * 1.1


def test_webhook_signature_verifies_and_rejects_tampering_and_replays():
    body = b'{"event":"alert.fired"}'
    now = str(int(time.time()))
    signature = sign("secret", now, body)
    assert signature.startswith("sha256=") and verify_signature("secret", now, body, signature)
    assert not verify_signature("secret", now, body + b" ", signature)
    assert not verify_signature("other", now, body, signature)
    old = str(int(time.time()) - 3600)
    assert not verify_signature("secret", old, body, sign("secret", old, body))


# --------------------------------------------------------------------------- definitions that reach too far


def _one_alert_yaml(tmp_path, **fields) -> list[str]:
    """The errors of a definitions file holding one otherwise valid alert with ``fields``."""
    import yaml

    from include.alerts.definitions import load_definitions

    alert = {"name": "reaching", "sql": "SELECT 1", "condition": ">", "threshold": 0, **fields}
    (tmp_path / "team.yaml").write_text(yaml.safe_dump({"alerts": [alert]}))
    return [str(e) for e in load_definitions(tmp_path, AlertSettings(minimum_interval=0)).errors]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"channels": [{"type": "webhook", "endpoint": "http://other-host/x"}]},
            "channels[0].endpoint",
            "'http://other-host/x' is not a path under the webhook connection's base URL",
        ),
        ({"channels": [{"type": "webhook", "endpoint": "//other-host/x"}]}, "channels[0].endpoint", "is not a path"),
        ({"channels": [{"type": "webhook", "endpoint": "a/../../admin"}]}, "channels[0].endpoint", "is not a path"),
        ({"sql": "COPY (SELECT 1) TO PROGRAM 'id > /tmp/x'"}, "sql", "COPY statements never run"),
        ({"sql": "DO $$ BEGIN END $$"}, "sql", "DO statements never run"),
        (
            {"subject_template": "{% for %}"},
            "subject_template",
            "the template is refused: line 1: Expected an expression",
        ),
        ({"message_template": "{{ value_txt }}"}, "message_template", "'value_txt' is undefined"),
        (
            {"message_template": "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"},
            "message_template",
            "rendering took longer than 1s",
        ),
        (
            {"message_template": "{% for i in range(10000) %}{{ alert_name }}{% endfor %}"},
            "message_template",
            "the output is longer than 16384 characters",
        ),
        ({"subject_template": "{{ 'x' * 20000000 }}"}, "subject_template", "a value longer than 16384 characters"),
    ],
)
def test_definitions_that_reach_too_far_are_refused_at_sync_naming_the_alert_and_field(
    tmp_path, fields, field, message
):
    errors = _one_alert_yaml(tmp_path, **fields)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"team.yaml: alert 'reaching': field '{field}': ") and message in errors[0], errors


def test_an_email_channel_takes_at_most_the_documented_number_of_recipients(tmp_path):
    from include.settings import MAX_RECIPIENTS

    addresses = [f"r{i}@example.com" for i in range(MAX_RECIPIENTS + 1)]
    assert _one_alert_yaml(tmp_path, channels=[{"type": "email", "to": addresses[:-1]}]) == []
    [error] = _one_alert_yaml(tmp_path, channels=[{"type": "email", "to": addresses}])
    assert (
        f"field 'channels[0].to': {MAX_RECIPIENTS + 1} recipients; an email channel has at most {MAX_RECIPIENTS}"
        in (error)
    )


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("", "https://hooks.example.com/alerts?token=abc"),
        ("/orders", "https://hooks.example.com/alerts/orders?token=abc"),
        ("orders/eu?x=1", "https://hooks.example.com/alerts/orders/eu?token=abc&x=1"),
    ],
)
def test_an_endpoint_is_joined_under_the_base_url_keeping_its_query(endpoint, url):
    from hooks.endpoints import url_under_base

    assert url_under_base("https://hooks.example.com/alerts?token=abc", endpoint) == url


@pytest.mark.parametrize(
    "endpoint", ["http://other-host/x", "//other-host/x", "../x", "a/%2e%2e/x", "evil.com:80/x", "a\\b", "x#f"]
)
def test_an_endpoint_that_would_leave_the_base_url_is_refused(endpoint):
    import re

    from hooks.endpoints import ENDPOINT_PATTERN, EndpointNotAllowed, url_under_base

    with pytest.raises(EndpointNotAllowed):
        url_under_base("https://hooks.example.com/alerts", endpoint)
    assert not re.match(ENDPOINT_PATTERN, endpoint)


def test_the_alert_schema_holds_the_endpoint_pattern_the_sender_enforces():
    from hooks.endpoints import ENDPOINT_PATTERN
    from include.alerts.definitions import alert_schema

    webhook = next(
        c["then"] for c in alert_schema()["$defs"]["channel"]["allOf"] if "endpoint" in c["then"]["properties"]
    )
    assert webhook["properties"]["endpoint"]["pattern"] == ENDPOINT_PATTERN


def test_secrets_in_urls_and_error_texts_are_redacted():
    from observability.redaction import redact

    text = (
        "POST https://user:pa55word@hooks.example.com/x?token=SECRET123&room=ops answered HTTP 500; "
        "Max retries exceeded with url: /hook?key=OTHERSECRET (Caused by ...); "
        "posting to https://hooks.slack.com/services/T0/B0/SLACKSECRET failed"
    )
    redacted = redact(text)
    for secret in ("pa55word", "SECRET123", "OTHERSECRET", "SLACKSECRET"):
        assert secret not in redacted
    assert "hooks.example.com/x?token=***&room=ops answered HTTP 500" in redacted  # short values are no secrets
