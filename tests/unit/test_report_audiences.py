"""Report audiences: validation naming the field, placeholders, ad-hoc overrides, one run per audience."""

from __future__ import annotations

import json

import pytest

from include.reports.audiences import placeholders
from include.reports.definitions import InvalidReportError, definition_from_row, parse_request
from include.reports.planning import for_audience

SQL = "SELECT * FROM sales WHERE region = %(region)s AND sold_at < %(slot)s AND amount > %(min_amount)s"


@pytest.fixture(autouse=True)
def _allowed_destinations(monkeypatch):
    monkeypatch.setenv("REPORTS_ALLOWED_DESTINATIONS", json.dumps([{"name": "exports", "url": "file:///srv/exports"}]))


def _row(**changes):
    row = {
        "id": 3,
        "name": "sales by region",
        "sql": SQL,
        "parameters": {"min_amount": 0},
        "schedule": "0 6 * * *",
        "audiences": [
            {"name": "emea", "recipients": ["emea@example.com"], "params": {"region": "EU"}},
            {"name": "amer", "destinations": ["exports/amer"], "params": {"region": "US", "min_amount": 10}},
        ],
    }
    return {**row, **changes}


def test_placeholders_skip_literal_percent_signs():
    assert placeholders("SELECT '100%%' AS p, %(a)s, %(b)s WHERE x LIKE 'a%%(c)s'") == {"a", "b"}


def test_audiences_are_parsed_and_each_run_gets_its_own_targets_and_values():
    definition = definition_from_row(_row())
    emea, amer = definition.audiences
    assert (emea.name, emea.recipients, dict(emea.params)) == ("emea", ("emea@example.com",), {"region": "EU"})
    assert [d.url for d in amer.destinations] == ["file:///srv/exports/amer"]

    run = for_audience(definition, amer)
    assert run.recipients == () and [d.url for d in run.destinations] == ["file:///srv/exports/amer"]
    assert dict(run.parameters) == {"min_amount": 10, "region": "US"}  # the audience's values win
    assert for_audience(definition, emea).parameters == {"min_amount": 0, "region": "EU"}


def _audience(index: int, **changes):
    audiences = _row()["audiences"]
    audiences[index] = {**audiences[index], **changes}
    return audiences


@pytest.mark.parametrize(
    ("audiences", "field", "message"),
    [
        ({"name": "x"}, "audiences", "JSON array"),
        ([], "audiences", "empty list"),
        (["emea"], "audiences[0]", "expected an object"),
        (_audience(1, params={"regoin": "US"}), "audiences[1].params.regoin", "no %(regoin)s placeholder"),
        (_audience(1, params={"region": {"a": 1}}), "audiences[1].params.region", "string, number"),
        (_audience(1, params={"min_amount": 3}), "audiences[1].params.region", "uses %(region)s"),
        (_audience(0, params={"region": "EU", "slot": "2026-01-01"}), "audiences[0].params.slot", "schedule's"),
        (_audience(0, recipients=["not-an-address"]), "audiences[0].recipients", "not an email address"),
        (_audience(1, destinations=["file:///etc"]), "audiences[1].destinations[0]", "allowed"),
        (_audience(1, recipients=[], destinations=[]), "audiences[1]", "no recipients and no destinations"),
        (_audience(1, name="../amer"), "audiences[1].name", "letters, digits"),
        (_audience(1, name="emea"), "audiences[1].name", "also audiences[0]"),
        (_audience(0, filter="x"), "audiences[0].filter", "unknown field"),
    ],
)
def test_invalid_audiences_name_the_field(audiences, field, message):
    with pytest.raises(InvalidReportError) as raised:
        definition_from_row(_row(audiences=audiences))
    assert raised.value.field == field, raised.value
    assert message in str(raised.value) and raised.value.report == "sales by region"


def test_too_many_audience_recipients_are_refused_like_the_report_s(monkeypatch):
    from include.settings import MAX_RECIPIENTS

    many = [f"user{i}@example.com" for i in range(MAX_RECIPIENTS + 1)]
    with pytest.raises(InvalidReportError, match="audiences\\[0\\].recipients.*at most") as raised:
        definition_from_row(_row(audiences=_audience(0, recipients=many)))
    assert raised.value.field == "audiences[0].recipients"


def test_a_report_with_audiences_has_no_recipients_of_its_own():
    with pytest.raises(InvalidReportError) as raised:
        definition_from_row(_row(recipients=["all@example.com"]))
    assert raised.value.field == "recipients" and "move these into an audience" in str(raised.value)


def test_adhoc_trigger_picks_one_audience_and_cannot_widen_its_rows():
    definition = definition_from_row(_row())
    every = parse_request({"report_id": 3, "parameters": {"region": "ALL"}}).apply_overrides(definition)
    assert [a.name for a in every.audiences] == ["emea", "amer"]
    assert for_audience(every, every.audiences[0]).parameters["region"] == "EU"

    one = parse_request({"report_id": 3, "audience": "amer", "recipients": ["me@example.com"]})
    (amer,) = one.apply_overrides(definition).audiences
    assert (amer.name, amer.recipients, amer.destinations, amer.params["region"]) == (
        "amer",
        ("me@example.com",),
        (),
        "US",
    )


@pytest.mark.parametrize(
    ("conf", "field", "message"),
    [
        ({"report_id": 3, "recipients": ["me@example.com"]}, "recipients", "name one in 'audience'"),
        ({"report_id": 3, "audience": "apac"}, "audience", "no audience 'apac'; its audiences: ['emea', 'amer']"),
    ],
)
def test_adhoc_audience_errors_name_the_field(conf, field, message):
    with pytest.raises(InvalidReportError) as raised:
        parse_request(conf).apply_overrides(definition_from_row(_row()))
    assert raised.value.field == field and message in str(raised.value)


def test_audience_needs_a_stored_report():
    with pytest.raises(InvalidReportError) as raised:
        parse_request({"sql": "SELECT 1", "audience": "emea"})
    assert raised.value.field == "audience"
