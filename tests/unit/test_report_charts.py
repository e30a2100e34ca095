"""Chart specs of png/pdf reports: validation that names the bad field, and the aggregate query."""

from __future__ import annotations

import pytest

from include.reports.charts import MAX_POINTS, ChartSpec, aggregate_statement, check_chart_columns, parse_chart
from include.reports.definitions import InvalidReportError, ReportDefinition, parse_request, validate_definition

LINE = {"kind": "line", "x": "day", "y": "amount", "series": "region"}


def test_a_spec_is_parsed_with_defaults_and_stored_back_as_given():
    chart = parse_chart({**LINE, "top_n": 3, "y_format": "{:,.0f} €", "x_format": "%d %b", "title": " Sales "})
    assert (chart.kind, chart.x, chart.y, chart.series, chart.aggregate, chart.top_n) == (
        "line",
        "day",
        ("amount",),
        "region",
        "sum",
        3,
    )
    assert (chart.width, chart.height, chart.title) == (1000, 560, "Sales")
    assert parse_chart(chart.as_json()) == chart
    assert parse_chart({"kind": "bar", "x": "day", "y": ["a", "b"]}).y == ("a", "b")
    assert parse_chart(None) is None


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ("line", "chart", "JSON object"),
        ({**LINE, "kind": "pie"}, "chart.kind", "not a chart kind"),
        ({**LINE, "colour": "red"}, "chart.colour", "unknown chart field"),
        ({"kind": "line", "y": "amount"}, "chart.x", "name of a column"),
        ({"kind": "line", "x": "day"}, "chart.y", "name of a column"),
        ({"kind": "line", "x": "day", "y": []}, "chart.y", "non-empty list"),
        ({**LINE, "y": ["a", "b"]}, "chart.y", "one y column"),
        ({"kind": "line", "x": "day", "y": ["a", "a"]}, "chart.y", "twice"),
        ({**LINE, "x": "amount"}, "chart.x", "also used"),
        ({**LINE, "aggregate": "median"}, "chart.aggregate", "not one of"),
        ({**LINE, "aggregate": "none"}, "chart.aggregate", "scatter and table"),
        ({**LINE, "kind": "scatter", "aggregate": "none", "top_n": 2}, "chart.top_n", "needs an aggregate"),
        ({**LINE, "top_n": 0}, "chart.top_n", "from 1 to 50"),
        ({**LINE, "top_n": True}, "chart.top_n", "integer"),
        ({**LINE, "width": 50}, "chart.width", "from 200 to 4000"),
        ({**LINE, "height": "tall"}, "chart.height", "integer"),
        ({**LINE, "table_rows": 10_000}, "chart.table_rows", "from 0 to 500"),
        ({**LINE, "y_format": ",.0f"}, "chart.y_format", "number format"),
        ({**LINE, "y_format": "{:,.0q}"}, "chart.y_format", "not a number format"),
        ({**LINE, "x_format": "day-month"}, "chart.x_format", "date format"),
        ({**LINE, "title": "x" * 300}, "chart.title", "at most 200"),
        ({**LINE, "stacked": "yes"}, "chart.stacked", "true or false"),
        ({**LINE, "stacked": True}, "chart.stacked", "only bar and area"),
    ],
)
def test_an_invalid_spec_names_the_bad_field(spec, field, message):
    with pytest.raises(InvalidReportError, match=message) as raised:
        parse_chart(spec, report="weekly")
    assert raised.value.field == field
    assert f"field {field!r}" in str(raised.value) and "report 'weekly'" in str(raised.value)


def test_png_and_pdf_need_a_chart_and_requests_carry_one():
    with pytest.raises(InvalidReportError, match="draws the report's chart") as raised:
        validate_definition(ReportDefinition(name="r", sql="SELECT 1", format="png"))
    assert raised.value.field == "chart"
    with pytest.raises(InvalidReportError) as raised:
        parse_request({"sql": "SELECT 1", "format": "pdf"})
    assert raised.value.field == "chart"
    with pytest.raises(InvalidReportError) as raised:
        parse_request({"sql": "SELECT 1", "format": "png", "chart": {**LINE, "kind": "donut"}})
    assert raised.value.field == "chart.kind"

    request = parse_request({"sql": "SELECT 1", "format": "png", "chart": LINE})
    assert request.inline_definition().chart == parse_chart(LINE)
    stored = ReportDefinition(name="r", sql="SELECT 1", format="csv")
    overridden = parse_request({"report_id": 3, "format": "pdf", "chart": LINE}).apply_overrides(stored)
    assert (overridden.format, overridden.chart) == ("pdf", parse_chart(LINE))
    assert parse_request({"report_id": 3, "chart": {}}).chart is None  # an emptied form field


def test_chart_columns_must_be_in_the_result():
    chart = parse_chart(LINE)
    check_chart_columns(chart, ("day", "region", "amount", "other"))
    with pytest.raises(InvalidReportError, match="'region' is not a column") as raised:
        check_chart_columns(chart, ("day", "amount"))
    assert raised.value.field == "chart.series"


def _text(composed) -> str:
    """A composed query as text, without a connection (identifiers quoted, literals inlined)."""
    return " ".join(composed.as_string(None).split())


def test_the_aggregate_query_groups_by_x_and_series_and_keeps_the_top_series():
    top = _text(aggregate_statement(ChartSpec("line", "day", ("amount",), "region", top_n=3), "SELECT * FROM s"))
    assert 'SELECT "day", "region", sum("amount") AS "amount" FROM ( SELECT * FROM s ) AS report' in top
    assert 'GROUP BY "day", "region"' in top
    assert 'ORDER BY sum("amount") DESC NULLS LAST LIMIT 3' in top and f"LIMIT {MAX_POINTS + 1}" in top

    bars = _text(aggregate_statement(ChartSpec("bar", "day", ("a", "b"), aggregate="avg"), "SELECT 1"))
    assert 'SELECT "day", avg("a") AS "a", avg("b") AS "b"' in bars and 'ORDER BY "day"' in bars

    points = _text(aggregate_statement(ChartSpec("scatter", "x", ("y",), aggregate="none"), "SELECT 1"))
    assert points == f'SELECT "x", "y" FROM ( SELECT 1 ) AS report LIMIT {MAX_POINTS + 1}'

    hostile = _text(aggregate_statement(ChartSpec("bar", 'd"; DROP TABLE t; --', ("y",)), "SELECT 1"))
    assert '"d""; DROP TABLE t; --"' in hostile  # identifiers are quoted, never pasted
