"""Chart specs of reports: what a ``png`` / ``pdf`` report draws, validated like the rest of a definition.

A chart spec is a small JSON object on the report (``analytics_reports.chart``) or on an ad-hoc
trigger (``chart`` in the conf or the trigger form)::

    {"kind": "line", "x": "day", "y": "amount", "series": "region", "aggregate": "sum",
     "top_n": 5, "title": "Sales by region", "y_format": "{:,.0f} €", "x_format": "%d %b",
     "width": 1000, "height": 560}

The chart is never drawn from every row: :func:`aggregate_statement` turns the report's SQL into
one aggregate query (grouped by ``x`` and ``series``, keeping the ``top_n`` largest series) whose
result is small, so drawing a chart of five million rows needs no more memory than one of a hundred.
This module is pure logic (no database, no drawing library), cheap to import at DAG parse time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg import sql as psycopg_sql

KINDS = ("line", "bar", "area", "scatter", "table")
AGGREGATES = ("sum", "avg", "min", "max", "count", "none")
#: Formats whose file is drawn from the report's chart spec.
CHART_FORMATS = ("png", "pdf")
#: Most points (rows of the aggregate) a chart may have; more is an error asking for coarser ``x``.
MAX_POINTS = 20_000
#: Most series (or x categories of a series-less bar chart) a chart draws; ``top_n`` chooses fewer.
MAX_SERIES = 50
#: Pixel bounds of ``width`` and ``height`` (the PNG's size; the PDF keeps the aspect ratio).
MIN_PIXELS, MAX_PIXELS = 200, 4000
DEFAULT_WIDTH, DEFAULT_HEIGHT = 1000, 560
#: Rows of the report's result printed as a table in the PDF, by default and at most.
DEFAULT_TABLE_ROWS, MAX_TABLE_ROWS = 25, 500
_TEXT_LIMIT = 200
_FIELDS = (
    "kind",
    "x",
    "y",
    "series",
    "aggregate",
    "top_n",
    "title",
    "x_label",
    "y_label",
    "x_format",
    "y_format",
    "stacked",
    "width",
    "height",
    "table_rows",
)


@dataclass(frozen=True)
class ChartSpec:
    """A validated chart spec (see the module docstring for the JSON form)."""

    kind: str
    x: str
    y: tuple[str, ...]
    series: str | None = None
    aggregate: str = "sum"
    top_n: int | None = None
    title: str | None = None
    x_label: str | None = None
    y_label: str | None = None
    x_format: str | None = None
    y_format: str | None = None
    stacked: bool = False
    width: int = DEFAULT_WIDTH
    height: int = DEFAULT_HEIGHT
    table_rows: int = DEFAULT_TABLE_ROWS

    def as_json(self) -> dict[str, Any]:
        """The spec as stored (``y`` as a string when it names one column; unset fields left out)."""
        data: dict[str, Any] = {"kind": self.kind, "x": self.x, "y": self.y[0] if len(self.y) == 1 else list(self.y)}
        defaults = ChartSpec(kind=self.kind, x=self.x, y=self.y)
        for name in _FIELDS[3:]:
            value = getattr(self, name)
            if value != getattr(defaults, name):
                data[name] = value
        return data

    def columns(self) -> tuple[str, ...]:
        """The result columns the chart reads."""
        return (self.x, *((self.series,) if self.series else ()), *self.y)


def _error(name: str, message: str, report: str | None):
    from include.reports.errors import InvalidReportError

    return InvalidReportError(name, message, report=report)


def _column(value: Any, name: str, report: str | None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _error(name, f"expected the name of a column of the report's result, got {value!r}", report)
    return value.strip()


def _text(value: Any, name: str, report: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _TEXT_LIMIT:
        raise _error(name, f"expected a text of at most {_TEXT_LIMIT} characters, got {value!r}", report)
    return value.strip() or None


def _integer(value: Any, name: str, low: int, high: int, report: str | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _error(name, f"expected an integer from {low} to {high}, got {value!r}", report)
    return value


def check_number_format(value: Any, name: str, report: str | None = None) -> str | None:
    """A Python format string for numbers such as ``"{:,.0f}"``, ``"{:.1%}"`` or ``"$ {:,.2f}"``."""
    if value is None:
        return None
    if not isinstance(value, str) or "{" not in value or len(value) > _TEXT_LIMIT:
        raise _error(name, f"expected a number format such as '{{:,.0f}}' or '{{:.1%}}', got {value!r}", report)
    try:
        value.format(1234.5)
    except (ValueError, IndexError, KeyError) as error:
        raise _error(name, f"{value!r} is not a number format ({error})", report) from None
    return value


def check_axis_format(value: Any, name: str, report: str | None = None) -> str | None:
    """A number format (``"{:,.0f}"``) or, for dates and times, an strftime pattern (``"%Y-%m-%d"``)."""
    if value is None or (isinstance(value, str) and "{" in value):
        return check_number_format(value, name, report)
    if not isinstance(value, str) or "%" not in value or len(value) > _TEXT_LIMIT:
        raise _error(
            name,
            f"expected a number format such as '{{:,.0f}}' or a date format such as '%Y-%m-%d', got {value!r}",
            report,
        )
    try:
        datetime(2026, 1, 31, 13, 45).strftime(value)
    except ValueError as error:
        raise _error(name, f"{value!r} is not a date format ({error})", report) from None
    return value


def parse_chart(value: Any, *, field_name: str = "chart", report: str | None = None) -> ChartSpec | None:
    """Validate a chart spec (a JSON object, or ``None`` for no chart); errors name ``chart.<field>``."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _error(field_name, "expected a JSON object such as {'kind': 'line', 'x': ..., 'y': ...}", report)
    unknown = sorted(set(value) - set(_FIELDS))
    if unknown:
        raise _error(f"{field_name}.{unknown[0]}", f"unknown chart field; expected one of {list(_FIELDS)}", report)

    def name(key: str) -> str:
        return f"{field_name}.{key}"

    kind = value.get("kind")
    if kind not in KINDS:
        raise _error(name("kind"), f"{kind!r} is not a chart kind; expected one of {list(KINDS)}", report)
    x = _column(value.get("x"), name("x"), report)
    raw_y = value.get("y")
    if isinstance(raw_y, str) or raw_y is None:
        y = (_column(raw_y, name("y"), report),)
    elif isinstance(raw_y, Sequence) and raw_y:
        y = tuple(_column(item, name("y"), report) for item in raw_y)
    else:
        raise _error(name("y"), f"expected a column name or a non-empty list of column names, got {raw_y!r}", report)
    if len(set(y)) != len(y):
        raise _error(name("y"), f"names a column twice: {list(y)}", report)
    series = value.get("series")
    series = _column(series, name("series"), report) if series is not None else None
    if series is not None and len(y) > 1:
        raise _error(name("y"), "with a series column the chart draws one y column; give y as one name", report)
    if x in (*y, series):
        raise _error(name("x"), f"column {x!r} is also used as y or series", report)
    if series is not None and series in y:
        raise _error(name("series"), f"column {series!r} is also used as y", report)
    aggregate = value.get("aggregate", "sum")
    if aggregate not in AGGREGATES:
        raise _error(name("aggregate"), f"{aggregate!r} is not one of {list(AGGREGATES)}", report)
    if aggregate == "none" and kind not in ("scatter", "table"):
        raise _error(
            name("aggregate"), f"'none' (one point per row) is for scatter and table charts, not {kind}", report
        )
    top_n = value.get("top_n")
    if top_n is not None:
        top_n = _integer(top_n, name("top_n"), 1, MAX_SERIES, report)
        if aggregate == "none":
            raise _error(
                name("top_n"), "top_n ranks aggregated values; it needs an aggregate other than 'none'", report
            )
    stacked = value.get("stacked", False)
    if not isinstance(stacked, bool):
        raise _error(name("stacked"), f"expected true or false, got {stacked!r}", report)
    if stacked and kind not in ("bar", "area"):
        raise _error(name("stacked"), f"only bar and area charts stack, not {kind}", report)
    return ChartSpec(
        kind=kind,
        x=x,
        y=y,
        series=series,
        aggregate=aggregate,
        top_n=top_n,
        title=_text(value.get("title"), name("title"), report),
        x_label=_text(value.get("x_label"), name("x_label"), report),
        y_label=_text(value.get("y_label"), name("y_label"), report),
        x_format=check_axis_format(value.get("x_format"), name("x_format"), report),
        y_format=check_number_format(value.get("y_format"), name("y_format"), report),
        stacked=stacked,
        width=_integer(value.get("width", DEFAULT_WIDTH), name("width"), MIN_PIXELS, MAX_PIXELS, report),
        height=_integer(value.get("height", DEFAULT_HEIGHT), name("height"), MIN_PIXELS, MAX_PIXELS, report),
        table_rows=_integer(value.get("table_rows", DEFAULT_TABLE_ROWS), name("table_rows"), 0, MAX_TABLE_ROWS, report),
    )


def check_chart_columns(chart: ChartSpec, columns: Sequence[str], *, report: str | None = None) -> None:
    """Every column the chart names is a column of the report's result (``columns``, from describing the SQL)."""
    for key in ("x", "series", "y"):
        names = chart.y if key == "y" else (getattr(chart, key),)
        for column in names:
            if column is not None and column not in columns:
                raise _error(
                    f"chart.{key}", f"{column!r} is not a column of the report's result {list(columns)}", report
                )


# --------------------------------------------------------------------------- the aggregate query


def aggregate_statement(chart: ChartSpec, statement: str) -> psycopg_sql.Composed:
    """The one query whose result the chart draws: the report's ``statement`` grouped by x (and series).

    Columns of the result: ``x``, ``series`` (when the chart has one), then one per y column, ordered by
    x. With ``top_n``, only the ``top_n`` series with the largest total are kept (without a series:
    the ``top_n`` x values with the largest first y). ``aggregate: none`` selects the rows as they are.
    At most ``MAX_POINTS + 1`` rows come back, so a caller can tell that there were too many.
    """
    from psycopg import sql

    report = sql.SQL(statement)
    x = sql.Identifier(chart.x)
    series = sql.Identifier(chart.series) if chart.series else None
    keys = [x, series] if series else [x]
    limit = sql.Literal(MAX_POINTS + 1)
    if chart.aggregate == "none":
        columns = sql.SQL(", ").join([*keys, *map(sql.Identifier, chart.y)])
        return sql.SQL("SELECT {columns} FROM (\n{report}\n) AS report LIMIT {limit}").format(
            columns=columns, report=report, limit=limit
        )
    function = {"avg": "avg", "sum": "sum", "min": "min", "max": "max", "count": "count"}[chart.aggregate]
    values = sql.SQL(", ").join(
        sql.SQL("{function}({column}) AS {column}").format(function=sql.SQL(function), column=sql.Identifier(column))
        for column in chart.y
    )
    grouped = sql.SQL("SELECT {keys}, {values} FROM (\n{report}\n) AS report GROUP BY {keys}").format(
        keys=sql.SQL(", ").join(keys), values=values, report=report
    )
    first_y = sql.Identifier(chart.y[0])
    order = sql.SQL(", ").join(keys)
    if chart.top_n is None:
        return sql.SQL("SELECT * FROM ({grouped}) AS chart ORDER BY {order} LIMIT {limit}").format(
            grouped=grouped, order=order, limit=limit
        )
    rank_key = series or x
    return sql.SQL(
        "WITH chart AS ({grouped}),\n"
        "top_keys AS (SELECT {rank_key} FROM chart GROUP BY {rank_key}"
        " ORDER BY sum({first_y}) DESC NULLS LAST LIMIT {top_n})\n"
        "SELECT chart.* FROM chart JOIN top_keys USING ({rank_key}) ORDER BY {order} LIMIT {limit}"
    ).format(
        grouped=grouped,
        rank_key=rank_key,
        first_y=first_y,
        top_n=sql.Literal(chart.top_n),
        order=sql.SQL(", ").join(sql.SQL("chart.{}").format(key) for key in keys),
        limit=limit,
    )


def first_rows_statement(statement: str, rows: int) -> psycopg_sql.Composed:
    """The first ``rows`` rows of the report's result (in its own order), for the PDF's table."""
    from psycopg import sql

    return sql.SQL("SELECT * FROM (\n{report}\n) AS report LIMIT {rows}").format(
        report=sql.SQL(statement), rows=sql.Literal(rows)
    )
