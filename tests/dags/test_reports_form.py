"""The reports DAG's trigger form (its Params) offers the chart formats and a chart field."""

from __future__ import annotations

from tests.support.dags import get_dag


def test_the_trigger_form_offers_png_pdf_and_a_chart_spec():
    params = get_dag("reports").params
    assert params.get_param("format").schema["enum"] == [None, "csv", "csv.gz", "xlsx", "png", "pdf"]
    chart = params.get_param("chart")
    assert chart.schema["type"] == ["null", "object"] and chart.value is None
    assert chart.schema["title"] == "Chart (png, pdf)" and "Kinds: line, bar, area, scatter, table" in chart.description
