"""Drawing charts without a database: sizes, kinds, empty results, text that Latin-1 cannot hold."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from include.reports.charts import parse_chart
from include.reports.render import ChartData, Document, format_value, render_pdf, render_png


def _data(series: int = 2, points: int = 5) -> ChartData:
    days = [date(2026, 1, d) for d in range(1, points + 1)]
    return ChartData(
        {f"s{k}": (days, [float(k * 10 + d) for d in range(points)]) for k in range(series)}, series * points
    )


@pytest.mark.parametrize("kind", ["line", "bar", "area", "scatter", "table"])
def test_every_kind_draws_a_png_of_the_configured_size(tmp_path, kind):
    from PIL import Image

    chart = parse_chart({"kind": kind, "x": "day", "y": "v", "series": "s", "width": 420, "height": 300})
    render_png(chart, _data(), tmp_path / "c.png", title="t")
    image = Image.open(tmp_path / "c.png").convert("RGB")
    assert image.size == (420, 300)
    assert len(set(image.get_flattened_data())) > 10  # more than the background and one colour


def test_an_empty_result_says_so(tmp_path):
    from PIL import Image

    chart = parse_chart({"kind": "line", "x": "day", "y": "v"})
    render_png(chart, ChartData({}, 0), tmp_path / "c.png", title="t")
    assert Image.open(tmp_path / "c.png").size == (1000, 560)


def test_a_pdf_keeps_text_that_latin1_cannot_hold(tmp_path):
    from pypdf import PdfReader

    chart = parse_chart({"kind": "bar", "x": "day", "y": "v"})
    document = Document("Umsatz Łódź", datetime(2026, 11, 3, 6, tzinfo=UTC), datetime(2026, 11, 3, 6, 1, tzinfo=UTC))
    pages = render_pdf(chart, _data(1), ["city", "amount"], [("Łódź", 12.5), ("Zürich €", None)], tmp_path / "r.pdf",
                       document=document)  # fmt: skip
    reader = PdfReader(tmp_path / "r.pdf")
    assert pages == len(reader.pages) == 2
    assert "Umsatz Łódź" in reader.pages[0].extract_text()
    assert "Slot 2026-11-03 06:00 UTC, generated 2026-11-03 06:01:00 UTC" in reader.pages[0].extract_text()
    table = reader.pages[1].extract_text()
    assert "Łódź" in table and "Zürich €" in table and "12.5" in table


def test_values_are_formatted_for_labels_and_cells():
    assert format_value(1234.5, "{:,.0f} €") == "1,234 €"
    assert format_value(date(2026, 1, 31), None, "%d %b") == "31 Jan"
    assert format_value(datetime(2026, 1, 31, 13, 45)) == "2026-01-31 13:45"
    assert format_value(None) == "" and format_value(float("nan")) == ""
    assert format_value("x" * 100).endswith("…") and len(format_value("x" * 100)) == 60
