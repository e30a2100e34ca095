"""Chart reports (png, pdf) against the real warehouse: through the reports DAG to a file destination,
and the errors that name what is wrong with a chart."""

from __future__ import annotations

import io
import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from include.reports.definitions import parse_request
from include.reports.generation import generate_run
from include.reports.planning import plan_runs
from tests.integration.reports.conftest import insert_report
from tests.support.dags import run_dag

#: Where ``UPDATE_DOCS_IMAGES=1 pytest tests/integration/reports/test_chart_reports.py`` puts the example.
DOCS_IMAGE = Path(__file__).resolve().parents[3] / "docs" / "images" / "chart-report.png"
#: Sales per day and region (7 regions in the sales table: customer % 7).
DAILY_SQL = (
    "SELECT date_trunc('day', sold_at) AS day, split_part(customer, '\"', 2) AS region, amount, id"
    " FROM sales ORDER BY id"
)
#: Two months of daily sales in six regions (made up, so the example image in docs/ shows something).
TWO_MONTHS_SQL = (
    "SELECT d::date AS day, 'region ' || r AS region,"
    " (100 + r * 15 + (extract(doy FROM d)::int * (r + 3)) % 29 + extract(doy FROM d)::int * r / 8)::numeric AS amount"
    " FROM generate_series(date '2026-10-01', date '2026-11-29', interval '1 day') AS d, generate_series(1, 6) AS r"
)
LINE_CHART = {
    "kind": "line",
    "x": "day",
    "y": "amount",
    "series": "region",
    "top_n": 4,
    "title": "Sales per day, top 4 regions",
    "y_format": "{:,.0f} €",
    "x_format": "%d %b",
    "width": 640,
    "height": 400,
}


def _not_blank(image) -> tuple[float, int]:
    """Share of pixels that differ from the background (the top-left pixel) and the number of colours."""
    rgb = image.convert("RGB")
    background = rgb.getpixel((0, 0))
    pixels = list(rgb.get_flattened_data())
    differing = sum(1 for p in pixels if p != background)
    return differing / len(pixels), len(set(pixels))


def test_png_and_pdf_reports_through_the_dag_to_a_file_destination(db, reports_env, tmp_path):
    from PIL import Image
    from pypdf import PdfReader

    drop = tmp_path / "drop"
    report_id = insert_report(
        db, name="daily sales chart", sql=TWO_MONTHS_SQL, format="png", chart=LINE_CHART, destinations=[drop.as_uri()]
    )

    # A stored png report, triggered by id, copied to the file destination.
    result = run_dag("reports", conf={"report_id": report_id})
    assert result.state == "success", result.task_states
    (png,) = drop.iterdir()
    assert png.suffix == ".png"
    image = Image.open(io.BytesIO(png.read_bytes()))
    image.verify()  # a complete, decodable PNG
    image = Image.open(png)
    assert (image.format, image.size) == ("PNG", (640, 400))
    share, colours = _not_blank(image)
    assert share > 0.03 and colours > 50, (share, colours)
    # rows of the run: the points drawn (the top 4 of 6 regions x 60 days), not the report's 360 rows
    run = db.execute("SELECT status, rows, format, chart FROM analytics_report_runs").fetchone()
    assert run[0] == "delivered" and run[2] == "png" and run[1] == 4 * 60
    assert run[3]["top_n"] == 4
    if os.environ.get("UPDATE_DOCS_IMAGES") == "1":
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, DOCS_IMAGE)

    # An ad-hoc pdf of inline SQL with a bar chart, from the trigger form's fields.
    pdf_drop = tmp_path / "pdf"
    bar = {"kind": "bar", "x": "region", "y": "amount", "title": "Sales by region", "table_rows": 30}
    result = run_dag(
        "reports",
        conf={"sql": DAILY_SQL, "format": "pdf", "chart": bar, "destination": pdf_drop.as_uri(), "name": "sales"},
    )
    assert result.state == "success", result.task_states
    (pdf,) = pdf_drop.iterdir()
    reader = PdfReader(pdf)
    assert len(reader.pages) == 2  # the chart, then the table of the first 30 rows
    first, table = (page.extract_text() for page in reader.pages)
    assert "Sales by region" in first and "UTC" in first and "generated" in first
    slot = db.execute("SELECT slot FROM analytics_report_runs ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert f"Slot {slot.astimezone(UTC):%Y-%m-%d %H:%M} UTC" in first
    assert "First 30 rows of the result" in table
    assert "day" in table and "region" in table and "amount" in table
    lines = table.splitlines()
    assert any(line.rstrip().endswith(" 30") for line in lines)  # id 30, the last row shown
    assert not any(line.rstrip().endswith(" 31") for line in lines)
    # the chart is vector graphics: no raster image on the page
    assert not list(reader.pages[0].images)


def test_an_invalid_chart_in_the_trigger_fails_validation_naming_the_field(db, reports_env, capfd):
    result = run_dag(
        "reports",
        conf={"sql": "SELECT 1 AS a, 2 AS b", "format": "png", "chart": {"kind": "pie", "x": "a", "y": "b"}},
    )
    assert result.task_states["validate_request"] == "failed"
    assert "field 'chart.kind': 'pie' is not a chart kind" in capfd.readouterr().out
    assert db.execute("SELECT count(*) FROM analytics_report_runs").fetchone()[0] == 0


def test_a_stored_invalid_chart_is_recorded_on_a_failed_run(db, reports_env):
    created = datetime.now(UTC) - timedelta(hours=2)
    insert_report(
        db,
        name="bad chart",
        sql=DAILY_SQL,
        format="png",
        schedule="0 * * * *",
        chart={"kind": "line", "x": "day", "y": "amount", "top_n": 500},
        created_at=created,
    )
    plan_runs(parse_request({}), dag_run_id="scheduled__bad_chart")
    status, trigger, error = db.execute("SELECT status, trigger, error FROM analytics_report_runs").fetchone()
    assert (status, trigger) == ("failed", "invalid")
    assert "report 'bad chart': field 'chart.top_n': expected an integer from 1 to 50" in error


@pytest.mark.parametrize(
    ("chart", "message"),
    [
        ({"kind": "line", "x": "day", "y": "amount", "series": "regoin"}, "chart.series: 'regoin' is not a column"),
        ({"kind": "bar", "x": "day", "y": "region"}, "chart: the chart's aggregate query failed: function sum(text)"),
        ({"kind": "scatter", "x": "id", "y": "amount", "aggregate": "none"}, None),
    ],
)
def test_chart_errors_at_generation_fail_the_run_without_retry(db, reports_env, chart, message):
    from airflow.sdk.exceptions import AirflowFailException

    insert_report(db, name="chart errors", sql=DAILY_SQL, format="png", chart=chart)
    (run_id,) = plan_runs(parse_request({"report_name": "chart errors"}), dag_run_id="manual__chart_errors")
    if message is None:  # the control: a valid scatter of the rows as they are
        assert generate_run(run_id, worker="test")["rows"] == 40
        return
    with pytest.raises(AirflowFailException, match=re.escape(message)):
        generate_run(run_id, worker="test")
    status, error = db.execute("SELECT status, error FROM analytics_report_runs").fetchone()
    assert status == "failed" and message in error and "the query failed" not in error
