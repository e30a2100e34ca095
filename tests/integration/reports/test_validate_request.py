"""The first task's checks that need the warehouse: the named report exists, ad-hoc SQL is one query."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.reports.tasks import validate_request
from tests.integration.reports.conftest import insert_report


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"sql": "SELEC 1"}, "field 'sql': syntax error"),
        ({"sql": "SELECT 1 AS a; SELECT 2 AS b"}, "field 'sql': the SQL must be exactly one statement"),
        ({"sql": "SELECT * FROM no_such_table"}, "field 'sql': relation \"no_such_table\" does not exist"),
        (
            {"sql": "SELECT %(missing)s AS x"},
            "field 'sql': cannot bind the SQL parameters (['slot']): query parameter missing: missing",
        ),
        ({"report_name": "nope"}, "field 'report_name': no report named 'nope'"),
        ({"report_name": "weekly", "recipients": ["x"]}, "field 'recipients': 'x' is not an email address"),
    ],
)
def test_bad_requests_fail_naming_the_field(db, reports_env, conf, message):
    insert_report(db, name="weekly", sql="SELECT 1 AS one")
    with pytest.raises(AirflowFailException, match="invalid report request") as raised:
        validate_request(conf)
    assert message in str(raised.value)


def test_good_requests_are_summarised(db, reports_env):
    report_id = insert_report(db, name="weekly", sql="SELECT 1 AS one", format="xlsx", recipients=["a@example.com"])

    assert validate_request({}) == {"mode": "scheduled"}
    assert validate_request({"report_id": report_id, "format": "csv"}) == {
        "mode": "report",
        "report": "weekly",
        "report_id": report_id,
        "format": "csv",
        "recipients": ["a@example.com"],
        "destinations": [],
    }
    assert validate_request({"sql": "SELECT %(n)s::int AS n", "parameters": {"n": 1}})["mode"] == "inline"
