"""XLSX reports at flat memory: rows are spooled to local disk while the statement runs, then written
by rust_xlsxwriter (``rustpy-xlsxwriter``, constant-memory mode) after the statement has ended.

Spooling keeps the query's time limit about the query: the statement stays open only as long as the
database needs to send the rows (psycopg parses them in C; ``json``/``jsonb`` arrive as their text and
``numeric`` as floats, with no Python objects built and thrown away). Writing the workbook is the
file's time. Measured side by side with xlsxwriter, pyexcelerate, xlsxlite and xlsxturbo in
``bench/report_charts.py`` (docs/reports.md has the table): about 8x xlsxwriter's constant-memory mode
at the same ~40 MB.

A worksheet holds at most 1,048,576 rows: longer reports continue on further sheets, each with the
header. The spool says how many rows there are before the workbook is started, so there are exactly
as many sheets as needed.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

#: Excel's limit of rows per worksheet (the header row included).
XLSX_MAX_ROWS = 1_048_576
#: Excel's limit of characters in a cell; longer text is cut (as Excel itself would).
XLSX_MAX_CHARS = 32_767
#: Rows per batch, both when streaming from the server and in the spool file.
BATCH_ROWS = 5000
#: Excel numbers are doubles: integers beyond this are written as text to stay exact.
_EXACT_INT = 2**53
_DATE_OID = 1082
_PLAIN = (str, int, float, bool, datetime, date)


def spool_rows(conn: psycopg.Connection, statement: str, spool: Path) -> tuple[int, tuple[int, ...]]:
    """Run ``statement`` and pickle its rows, in batches, into ``spool``; return (rows, column type oids)."""
    import psycopg
    from psycopg.types.numeric import FloatLoader
    from psycopg.types.string import TextLoader

    rows = 0
    with conn.cursor() as cur, open(spool, "wb") as out:
        for json_type in ("json", "jsonb"):
            cur.adapters.register_loader(json_type, TextLoader)  # the JSON text as it is
        cur.adapters.register_loader("numeric", FloatLoader)
        size = BATCH_ROWS if psycopg.capabilities.has_stream_chunked() else 1
        batch: list[tuple] = []
        stream = cur.stream(statement, size=size)
        for record in stream:
            batch.append(record)
            if len(batch) >= BATCH_ROWS:
                pickle.dump(batch, out, protocol=pickle.HIGHEST_PROTOCOL)
                rows += len(batch)
                batch = []
        if batch:
            pickle.dump(batch, out, protocol=pickle.HIGHEST_PROTOCOL)
            rows += len(batch)
        oids = tuple(column.type_code for column in cur.description or ())
    return rows, oids


def _spooled(spool: Path) -> Iterator[tuple]:
    with open(spool, "rb") as source:
        while True:
            try:
                batch = pickle.load(source)
            except EOFError:
                return
            yield from batch


def cell(value: Any) -> Any:
    """A value as rust_xlsxwriter writes it: numbers, text, booleans, dates; anything else as text."""
    kind = type(value)
    if kind in _PLAIN:
        if kind is str:
            return value if len(value) <= XLSX_MAX_CHARS else value[:XLSX_MAX_CHARS]
        if kind is int and abs(value) > _EXACT_INT:
            return str(value)
        if kind is datetime and value.tzinfo is not None:
            return value.replace(tzinfo=None)  # the wall time of the session's time zone, as in CSV
        return value
    if value is None:
        return None
    if kind is Decimal:
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, (dict, list)):
        return cell(json.dumps(value, default=str))
    return cell(str(value))


def header_names(columns: tuple[str, ...]) -> list[str]:
    """Column names made unique (``a``, ``a (2)``): a worksheet row is a mapping from header to value."""
    names: list[str] = []
    taken: set[str] = set()
    for column in columns:
        name, count = column, 1
        while name in taken:
            count += 1
            name = f"{column} ({count})"
        taken.add(name)
        names.append(name)
    return names


def write_xlsx(
    spool: Path,
    rows: int,
    columns: tuple[str, ...],
    type_oids: tuple[int, ...],
    path: Path,
    *,
    check: Callable[[str], None] | None = None,
) -> int:
    """Write the ``rows`` spooled rows into a workbook at ``path``; return the rows written.

    ``check(progress)`` is called every ``BATCH_ROWS`` rows and may raise to stop (a time limit);
    rust_xlsxwriter then writes no file.
    """
    import rustpy_xlsxwriter as rx

    names = header_names(columns)
    per_sheet = XLSX_MAX_ROWS - 1
    sheets = max(1, -(-rows // per_sheet))
    source = _spooled(spool)
    written = 0

    def sheet_rows(sheet: int) -> Iterator[dict[str, Any]]:
        nonlocal written
        if rows == 0:  # a workbook with the header only
            yield dict.fromkeys(names)
            return
        for record in islice(source, per_sheet):
            yield {name: cell(value) for name, value in zip(names, record, strict=True)}
            written += 1
            if check is not None and written % BATCH_ROWS == 0:
                check(f"{written:,} of {rows:,} rows (sheet {sheet})")

    titles = [f"Sheet{i}" for i in range(1, sheets + 1)]
    date_format = rx.Format().set_num_format("yyyy-mm-dd")
    date_columns = {name: date_format for name, oid in zip(names, type_oids, strict=False) if oid == _DATE_OID}
    rx.write_worksheets(
        [(title, sheet_rows(i)) for i, title in enumerate(titles, start=1)],
        str(path),
        bold_headers=True,
        datetime_format="yyyy-mm-dd hh:mm:ss",
        column_formats=dict.fromkeys(titles, date_columns) if date_columns else None,
    )
    return written
