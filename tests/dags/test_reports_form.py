"""The reports DAG's trigger form (its Params) offers the chart formats and a chart field."""

from __future__ import annotations

from tests.support.dags import get_dag


def test_the_trigger_form_offers_png_pdf_and_a_chart_spec():
    params = get_dag("reports").params
    assert params.get_param("format").schema["enum"] == [None, "csv", "csv.gz", "xlsx", "png", "pdf"]
    chart = params.get_param("chart")
    assert chart.schema["type"] == ["null", "object"] and chart.value is None
    assert chart.schema["title"] == "Chart (png, pdf)" and "Kinds: line, bar, area, scatter, table" in chart.description


def test_parsing_the_dag_imports_no_drawing_or_spreadsheet_library():
    """matplotlib, fpdf2 and rust_xlsxwriter are imported when a report is generated, never at parse time."""
    import json
    import subprocess
    import sys

    from devstack.airflow_env import PROJECT_ROOT

    heavy = ["matplotlib", "numpy", "fpdf", "fontTools", "PIL", "rustpy_xlsxwriter"]
    script = (
        "import json, runpy, sys; runpy.run_path('dags/reports.py');"
        f" print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


def test_the_trigger_form_offers_the_allowed_slack_channels():
    """``slack_channels`` is a multi-select of the operator's channels (the form is built when the DAG is parsed)."""
    import json
    import os
    import subprocess
    import sys

    from devstack.airflow_env import PROJECT_ROOT

    assert get_dag("reports").params.get_param("slack_channels").schema["type"] == ["null", "array"]
    script = (
        "import json, runpy; p = runpy.run_path('dags/reports.py')['PARAMS']['slack_channels'];"
        " print(json.dumps(p.schema))"
    )
    env = {
        **os.environ,
        "REPORTS_ALLOWED_SLACK_CHANNELS": json.dumps(["#reports", {"channel": "#ops", "conn_id": "x"}]),
    }
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    schema = json.loads(completed.stdout.strip().splitlines()[-1])
    assert schema["examples"] == ["slack:#reports", "slack:#ops"]
    assert schema["items"] == {"type": "string"} and schema["title"] == "Slack channels"
