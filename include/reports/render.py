"""Draw a report's chart without a browser or a display: ``png`` (the chart) and ``pdf`` (the chart
as vector graphics, then the first rows of the result as a table, with title, slot and generation time).

matplotlib draws (Agg for the PNG, its SVG backend for the vector chart of the PDF) and fpdf2 lays
out the PDF: title, the chart's SVG as PDF paths, and a paged table with repeated headers. Both are
imported only when a chart is drawn (about 0.5 s and 80 MB the first time in a worker process), never
at DAG parse time. docs/reports.md says why these libraries and not a headless browser or Vega-Lite.

What is drawn comes from two small queries: the chart's aggregate (:func:`charts.aggregate_statement`,
at most ``MAX_POINTS`` rows) and the first ``table_rows`` rows of the report. Neither loads the
report's whole result, so memory stays flat however many rows the report has.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.reports.charts import MAX_POINTS, ChartSpec, aggregate_statement, first_rows_statement
from include.reports.errors import ReportGenerationError

if TYPE_CHECKING:
    import psycopg

#: Characters of one table cell in the PDF before it is cut with an ellipsis.
CELL_CHARS = 60
#: Rows a ``table`` chart shows in its image.
TABLE_CHART_ROWS = 40
BACKGROUND = "#ffffff"


class ChartDataError(ReportGenerationError):
    """The chart cannot be drawn from this result (too many points, a y column that is not a number)."""

    reason = "chart"


@dataclass(frozen=True)
class ChartData:
    """The aggregate the chart draws: one ``(x, values)`` list per series, in x order."""

    series: dict[str, tuple[list[Any], list[float]]]
    points: int


@dataclass(frozen=True)
class Document:
    """What the PDF's heading says."""

    title: str
    slot: datetime | None
    generated_at: datetime


# --------------------------------------------------------------------------- data


def _number(value: Any, column: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    raise ChartDataError(f"chart.y: column {column!r} holds {type(value).__name__} values; a chart needs numbers")


def _naive(value: Any) -> Any:
    """Datetimes as the wall time of the session's time zone (as in the CSV and XLSX files)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    if isinstance(value, Decimal):
        return float(value)
    return value


def fetch_chart_data(conn: psycopg.Connection, chart: ChartSpec, statement: str) -> ChartData:
    """Run the chart's aggregate query; at most ``MAX_POINTS`` rows, else :class:`ChartDataError`."""
    import psycopg

    try:
        with conn.cursor() as cur:
            cur.execute(aggregate_statement(chart, statement))
            rows = cur.fetchall()
    except psycopg.Error as error:
        # 42: the aggregate does not fit the columns (sum of text...); 22: their data. Anything else
        # (a timeout, the server going away) is not the chart's fault and is handled by the caller.
        if (error.sqlstate or "")[:2] not in ("42", "22"):
            raise
        raise ChartDataError(f"chart: the chart's aggregate query failed: {str(error).strip()}") from error
    if len(rows) > MAX_POINTS:
        raise ChartDataError(
            f"chart.x: the chart would have more than {MAX_POINTS:,} points; group x more coarsely "
            f"(e.g. date_trunc('day', ...)) or set top_n"
        )
    series: dict[str, tuple[list[Any], list[float]]] = {}
    if chart.series:
        for row in rows:
            xs, ys = series.setdefault("(null)" if row[1] is None else str(row[1]), ([], []))
            xs.append(_naive(row[0]))
            ys.append(_number(row[2], chart.y[0]))
    else:
        for index, column in enumerate(chart.y, start=1):
            series[column] = ([_naive(row[0]) for row in rows], [_number(row[index], column) for row in rows])
    return ChartData(series, len(rows))


def fetch_first_rows(conn: psycopg.Connection, statement: str, rows: int) -> tuple[list[str], list[tuple]]:
    """The first ``rows`` rows of the report's result and its column names."""
    with conn.cursor() as cur:
        cur.execute(first_rows_statement(statement, rows))
        return [column.name for column in cur.description], cur.fetchall()


# --------------------------------------------------------------------------- formatting


def format_value(value: Any, number_format: str | None = None, date_format: str | None = None) -> str:
    """A cell or tick label: numbers through ``number_format``, dates through ``date_format``."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, (datetime, date)):
        if date_format:
            return value.strftime(date_format)
        if isinstance(value, datetime):
            return value.isoformat(sep=" ", timespec="seconds" if value.second or value.microsecond else "minutes")
        return value.isoformat()
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        if number_format:
            return number_format.format(float(value) if isinstance(value, Decimal) else value)
        if isinstance(value, float):
            return f"{value:,.6g}" if abs(value) < 1e15 else f"{value:.6g}"
        return f"{value}"
    text = str(value)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def _is_temporal(values: Sequence[Any]) -> bool:
    return any(isinstance(v, (datetime, date)) for v in values)


def _is_numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) for v in values if v is not None)


# --------------------------------------------------------------------------- drawing


def _figure(chart: ChartSpec, data: ChartData, title: str):
    """A matplotlib ``Figure`` of exactly ``width`` x ``height`` pixels at 100 dpi (no pyplot: no global state)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(chart.width / 100, chart.height / 100), dpi=100, facecolor=BACKGROUND)
    figure.set_layout_engine("constrained")
    axes = figure.add_subplot()
    axes.set_title(chart.title or title, fontsize=13, loc="left")
    if data.points == 0:
        axes.set_axis_off()
        axes.text(0.5, 0.5, "No data", ha="center", va="center", fontsize=14, color="#666666")
        return figure
    if chart.kind == "table":
        _draw_table(axes, chart, data)
        return figure
    colors = _colors(len(data.series))
    all_x = [x for xs, _ in data.series.values() for x in xs]
    categorical = chart.kind == "bar" or not (_is_numeric(all_x) or _is_temporal(all_x))
    if categorical:
        _draw_categorical(axes, chart, data, colors)
    else:
        _draw_continuous(axes, chart, data, colors, temporal=_is_temporal(all_x))
    if chart.y_format:
        from matplotlib.ticker import FuncFormatter

        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: chart.y_format.format(value)))
    else:
        axes.ticklabel_format(axis="y", style="plain", useOffset=False)
    axes.set_xlabel(chart.x_label or chart.x)
    axes.set_ylabel(chart.y_label or (chart.y[0] if len(chart.y) == 1 else ""))
    axes.grid(True, axis="y", color="#dddddd", linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    if len(data.series) > 1:
        axes.legend(
            title=chart.series, fontsize=8, title_fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1, 1)
        )
    return figure


def _colors(count: int) -> list:
    from matplotlib import colormaps

    palette = colormaps["tab10" if count <= 10 else "tab20"]
    return [palette(i % palette.N) for i in range(count)]


def _draw_series(axes, kind: str, xs: Sequence[Any], ys: Sequence[float], name: str, color) -> None:
    """One series as points (scatter) or a line (line, area: filled below)."""
    if kind == "scatter":
        axes.scatter(xs, ys, label=name, color=color, s=14)
        return
    axes.plot(xs, ys, label=name, color=color, linewidth=1.8, marker="o" if len(xs) <= 40 else None)
    if kind == "area":
        axes.fill_between(xs, ys, alpha=0.25, color=color)


def _draw_continuous(axes, chart: ChartSpec, data: ChartData, colors: list, *, temporal: bool) -> None:
    if chart.kind == "area" and chart.stacked:
        xs = sorted({x for values, _ in data.series.values() for x in values})
        stacks = []
        for values, ys in data.series.values():
            lookup = dict(zip(values, ys, strict=True))
            stacks.append([0.0 if math.isnan(lookup.get(x, math.nan)) else lookup[x] for x in xs])
        axes.stackplot(xs, stacks, labels=list(data.series), colors=colors, alpha=0.85)
    else:
        for (name, (xs, ys)), color in zip(data.series.items(), colors, strict=True):
            _draw_series(axes, chart.kind, xs, ys, name, color)
    if temporal:
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, DateFormatter

        locator = AutoDateLocator(minticks=3, maxticks=max(3, chart.width // 110))
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(
            DateFormatter(chart.x_format) if chart.x_format else ConciseDateFormatter(locator)
        )
    elif chart.x_format:
        from matplotlib.ticker import FuncFormatter

        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: chart.x_format.format(value)))


def _draw_categorical(axes, chart: ChartSpec, data: ChartData, colors: list) -> None:
    categories = list(dict.fromkeys(x for xs, _ in data.series.values() for x in xs))
    position = {x: i for i, x in enumerate(categories)}
    count = len(data.series)
    width = 0.8 if chart.stacked or count == 1 else 0.8 / count
    bottoms = [0.0] * len(categories)
    for index, ((name, (xs, ys)), color) in enumerate(zip(data.series.items(), colors, strict=True)):
        places = [position[x] for x in xs]
        if chart.kind == "bar":
            if chart.stacked:
                base = [bottoms[p] for p in places]
                axes.bar(places, ys, width, bottom=base, label=name, color=color)
                for p, y in zip(places, ys, strict=True):
                    bottoms[p] += 0.0 if math.isnan(y) else y
            else:
                offset = (index - (count - 1) / 2) * width
                axes.bar([p + offset for p in places], ys, width, label=name, color=color)
        else:
            _draw_series(axes, chart.kind, places, ys, name, color)
    labels = [
        format_value(x, chart.x_format if "{" in (chart.x_format or "") else None, _date_format(chart))
        for x in categories
    ]
    step = max(1, math.ceil(len(categories) / 30))
    axes.set_xticks(
        range(0, len(categories), step),
        labels[::step],
        rotation=45 if len(categories) > 8 else 0,
        ha="right" if len(categories) > 8 else "center",
        fontsize=8,
    )


def _date_format(chart: ChartSpec) -> str | None:
    return chart.x_format if chart.x_format and "{" not in chart.x_format else None


def _draw_table(axes, chart: ChartSpec, data: ChartData) -> None:
    """A pivot of the aggregate: one row per x, one column per series (or y column)."""
    xs = list(dict.fromkeys(x for values, _ in data.series.values() for x in values))
    lookup = {name: dict(zip(values, ys, strict=True)) for name, (values, ys) in data.series.items()}
    shown = xs[:TABLE_CHART_ROWS]
    cells = [
        [format_value(x, None, _date_format(chart))]
        + [format_value(lookup[name].get(x), chart.y_format) for name in data.series]
        for x in shown
    ]
    if len(xs) > len(shown):
        cells.append([f"… {len(xs) - len(shown):,} more"] + [""] * len(data.series))
    axes.set_axis_off()
    table = axes.table(cellText=cells, colLabels=[chart.x, *data.series], loc="upper center", cellLoc="right")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    for (row, _col), cell in table.get_celld().items():
        cell.set_edgecolor("#cccccc")
        if row == 0:
            cell.set_text_props(weight="bold")
            cell.set_facecolor("#f0f0f0")


def render_png(chart: ChartSpec, data: ChartData, path: Path, *, title: str) -> None:
    """The chart as a PNG of ``chart.width`` x ``chart.height`` pixels."""
    figure = _figure(chart, data, title)
    figure.savefig(path, format="png", dpi=100, facecolor=BACKGROUND, metadata={"Software": None})


def chart_svg(chart: ChartSpec, data: ChartData, *, title: str) -> bytes:
    """The chart as SVG (text drawn as paths, so it needs no font where it is shown)."""
    figure = _figure(chart, data, title)
    buffer = io.BytesIO()
    figure.savefig(
        buffer,
        format="svg",
        facecolor=BACKGROUND,
        metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
    )
    return buffer.getvalue()


def render_pdf(
    chart: ChartSpec,
    data: ChartData,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    path: Path,
    *,
    document: Document,
) -> int:
    """The PDF: heading, the chart as vector graphics, then the first ``rows`` as a table; returns its pages."""
    from fpdf import FPDF

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # font subsetting logs every table at INFO
    pdf = FPDF(orientation="landscape", format="A4", unit="mm")
    pdf.set_creator("analytics platform reports")
    pdf.set_title(document.title)
    pdf.set_auto_page_break(auto=True, margin=12)
    heading = _heading_line(document)
    cells = [[str(c) for c in columns], *([format_value(_naive(v)) for v in row] for row in rows)]
    font = _font(pdf, [document.title, heading, *(text for line in cells for text in line)])
    pdf.add_page()
    pdf.set_font(font, "B", 16)
    pdf.cell(text=document.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(font, "", 9)
    pdf.set_text_color(90, 90, 90)
    pdf.cell(text=heading, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.ln(2)
    svg = chart_svg(chart, data, title=document.title)
    room_w, room_h = pdf.epw, pdf.h - pdf.get_y() - pdf.b_margin
    scale = min(room_w / chart.width, room_h / chart.height)
    pdf.image(io.BytesIO(svg), w=chart.width * scale, h=chart.height * scale)
    if rows:
        pdf.add_page()
        pdf.set_font(font, "B", 11)
        pdf.cell(text=f"First {len(rows):,} rows of the result", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
        pdf.set_font(font, "", 7 if len(columns) > 8 else 8)
        numeric = [_is_numeric([row[i] for row in rows]) for i in range(len(columns))]
        with pdf.table(
            headings_style=_bold_heading(),
            text_align=tuple("RIGHT" if flag else "LEFT" for flag in numeric),
            line_height=pdf.font_size * 1.6,
            first_row_as_headings=True,
            repeat_headings=1,
        ) as table:
            for line in cells:
                table.row(line)
    pdf.output(str(path))
    return pdf.pages_count


def _font(pdf, texts: Sequence[str]) -> str:
    """Helvetica (built into every PDF reader, nothing to embed) when the text is Latin-1, else DejaVu Sans
    (shipped with matplotlib; embedded as a subset, which costs fontTools' time and about 15 MB)."""
    try:
        for text in texts:
            text.encode("latin-1")
        return "helvetica"
    except UnicodeEncodeError:
        from matplotlib import get_data_path

        fonts = Path(get_data_path()) / "fonts" / "ttf"
        pdf.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
        pdf.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
        return "DejaVu"


def _bold_heading():
    from fpdf.fonts import FontFace

    return FontFace(emphasis="BOLD", fill_color=(240, 240, 240))


def _heading_line(document: Document) -> str:
    generated = document.generated_at.astimezone(UTC)
    parts = []
    if document.slot is not None:
        parts.append(f"Slot {document.slot.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    parts.append(f"generated {generated:%Y-%m-%d %H:%M:%S} UTC")
    return ", ".join(parts)
