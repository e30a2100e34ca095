"""Stream a query into a CSV, gzipped CSV or XLSX file with flat memory.

CSV goes through ``COPY (<query>) TO STDOUT WITH (FORMAT csv, HEADER)``: the server formats the
rows and the client only moves bytes, in blocks, from the socket to the file. XLSX rows are
streamed in chunks from the server and written by xlsxwriter in ``constant_memory`` mode.

User SQL is bound client-side (``%(name)s`` placeholders), then checked to be exactly one
row-returning query by preparing and describing it on the server; the COPY and the XLSX
stream are sent through the extended query protocol, which refuses several statements too. The
caller runs all of this on the reader role, in a READ ONLY transaction with a statement timeout
(:meth:`hooks.warehouse.WarehouseReaderHook.read_only_transaction`).

A file is written under a temporary name and renamed when it is complete.
"""

from __future__ import annotations

import gc
import gzip
import json
import os
import select
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.reports.charts import CHART_FORMATS

if TYPE_CHECKING:
    import psycopg

    from include.reports.charts import ChartSpec

#: Bytes gathered from the COPY stream before one write to the file.
WRITE_BLOCK = 1 << 20
#: Rows per chunk when streaming for XLSX.
XLSX_CHUNK_ROWS = 2000
#: Excel's limit of rows per worksheet (the header row included).
XLSX_MAX_ROWS = 1_048_576
GZIP_LEVEL = 6


class ReportGenerationError(Exception):
    """The report cannot be generated as it is defined: fix the report, retrying will not help."""

    #: Label of the ``reports.failed`` metric.
    reason = "invalid"

    def describe(self) -> str:
        return str(self)


class ReportQueryError(ReportGenerationError):
    """The report's SQL was refused or failed on the server."""

    reason = "query"

    def describe(self) -> str:
        return f"the query failed: {self}"


def describe_failure(error: BaseException) -> str:
    """What went wrong, for the run's error: which limit, the chart, or the query (the server's words)."""
    if isinstance(error, ReportGenerationError):
        return error.describe()
    return f"the query failed: {error}"


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int
    bytes: int
    columns: tuple[str, ...]
    seconds: float


def bind_sql(conn: psycopg.Connection, sql: str, parameters: Mapping[str, Any] | None) -> str:
    """The SQL with its ``%(name)s`` parameters bound as literals (psycopg's client-side quoting).

    SQL without placeholders is returned as is (so ``LIKE 'a%'`` needs no escaping there).
    """
    import psycopg
    from psycopg import ClientCursor
    from psycopg.types.json import Jsonb

    from include.reports.definitions import strip_sql

    sql = strip_sql(sql)
    if "%(" not in sql:
        return sql
    values = {k: Jsonb(v) if isinstance(v, dict) else v for k, v in (parameters or {}).items()}
    try:
        with ClientCursor(conn) as cur:
            return cur.mogrify(sql, values)
    except (psycopg.ProgrammingError, KeyError, TypeError, ValueError) as error:
        raise ReportQueryError(f"cannot bind the SQL parameters ({list(values)}): {error}") from None


def describe_statement(conn: psycopg.Connection, statement: str) -> tuple[str, ...]:
    """Check on the server, without running it, that ``statement`` is one query returning rows; return its columns.

    See :func:`hooks.warehouse.describe_query`: anything else (several statements, ``COPY``,
    ``DO``, ``SET``, a ``DELETE`` without ``RETURNING``...) raises :class:`ReportQueryError`.
    Errors in the SQL itself (syntax, unknown table) raise the server's error.
    """
    from hooks.warehouse import RefusedStatement, describe_query

    try:
        return describe_query(conn, statement)
    except RefusedStatement as refused:
        raise ReportQueryError(str(refused)) from None


# --------------------------------------------------------------------------- CSV through COPY


def copy_csv(
    conn: psycopg.Connection,
    statement: str,
    write: Callable[[bytes], Any],
    *,
    header: bool = True,
    wait_timeout: float = 3600.0,
) -> int:
    """``COPY (statement) TO STDOUT`` as CSV into ``write``; return the number of rows.

    Uses psycopg's libpq connection directly so that rows are gathered into large blocks without a
    Python call per row to the file; the command goes through the extended protocol (one statement).
    """
    from psycopg import errors, pq

    options = "FORMAT csv, HEADER" if header else "FORMAT csv"
    command = f"COPY (\n{statement}\n) TO STDOUT WITH ({options})".encode(conn.info.encoding)
    pgconn = conn.pgconn
    deadline = time.monotonic() + wait_timeout
    pgconn.send_query_params(command, None)
    while pgconn.flush():
        _wait(pgconn, deadline, write=True)
    result = _next_result(pgconn, deadline)
    if result is None or result.status != pq.ExecStatus.COPY_OUT:
        _drain_results(pgconn)
        if result is not None and result.status == pq.ExecStatus.FATAL_ERROR:
            raise errors.error_from_result(result, encoding=conn.info.encoding)
        raise ReportQueryError("the SQL did not start a COPY")
    try:
        _copy_blocks(pgconn, write, deadline)
    except BaseException:
        _abort_copy(conn)
        raise
    rows = 0
    failure = None
    while (result := _next_result(pgconn, deadline)) is not None:
        if result.status == pq.ExecStatus.FATAL_ERROR and failure is None:
            failure = errors.error_from_result(result, encoding=conn.info.encoding)
        elif result.status == pq.ExecStatus.COMMAND_OK:
            rows = result.command_tuples or 0  # "COPY <rows>"
    if failure is not None:
        raise failure
    return rows


def _copy_blocks(pgconn: Any, write: Callable[[bytes], Any], deadline: float) -> None:
    from psycopg import OperationalError

    get_copy_data = pgconn.get_copy_data
    # One reused buffer: each row's bytes object is freed right away (a list of a million rows
    # joined later costs twice the CPU). The cyclic GC has nothing to find among these tuples.
    block = bytearray()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while True:
            length, data = get_copy_data(1)  # non-blocking: 0 means "wait for the socket"
            if length > 0:
                block += data
                if len(block) >= WRITE_BLOCK:
                    write(block)
                    block.clear()
            elif length == 0:
                _wait(pgconn, deadline)
                pgconn.consume_input()
            elif length == -1:
                break
            else:
                raise OperationalError(f"COPY failed: {pgconn.get_error_message().decode(errors='replace')}")
    finally:
        if gc_was_enabled:
            gc.enable()
    if block:
        write(block)


def _wait(pgconn: Any, deadline: float, *, write: bool = False) -> None:
    from psycopg import OperationalError

    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise OperationalError("no answer from the database before the export's wait timeout")
    fd = pgconn.socket
    ready = select.select([] if write else [fd], [fd] if write else [], [], remaining)
    if not any(ready):
        raise OperationalError("no answer from the database before the export's wait timeout")


def _next_result(pgconn: Any, deadline: float):
    pgconn.consume_input()
    while pgconn.is_busy():
        _wait(pgconn, deadline)
        pgconn.consume_input()
    return pgconn.get_result()


def _drain_results(pgconn: Any) -> None:
    while pgconn.get_result() is not None:
        pass


def _abort_copy(conn: psycopg.Connection) -> None:
    """Cancel a COPY we stopped reading, so that the connection can roll back (or be closed)."""
    pgconn = conn.pgconn
    try:
        conn.cancel_safe(timeout=5)
        while pgconn.get_copy_data(0)[0] >= 0:
            pass
        _drain_results(pgconn)
    except Exception:  # the connection will be closed by the caller anyway
        pass


# --------------------------------------------------------------------------- XLSX


def _xlsx_cell(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is bool or kind is int or kind is float or kind is datetime or kind is date:
        if kind is int and abs(value) > 2**53:
            return str(value)  # Excel numbers are doubles: keep big integers exact as text
        return value
    if kind is Decimal:
        return float(value) if value.is_finite() else str(value)
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def write_xlsx(conn: psycopg.Connection, statement: str, columns: tuple[str, ...], path: Path) -> int:
    """Stream the rows of ``statement`` into an XLSX workbook at ``path``; return the number of rows.

    New worksheets are started when one is full (Excel allows 1,048,576 rows per sheet).
    """
    import psycopg
    import xlsxwriter

    scratch = Path(tempfile.mkdtemp(prefix=".xlsx-", dir=path.parent))
    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "tmpdir": str(scratch),
            "remove_timezone": True,
            "nan_inf_to_errors": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "default_date_format": "yyyy-mm-dd hh:mm:ss",
        },
    )
    bold = workbook.add_format({"bold": True})
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    rows = 0
    sheet = None
    row_index = XLSX_MAX_ROWS
    size = XLSX_CHUNK_ROWS if psycopg.capabilities.has_stream_chunked() else 1
    try:
        with conn.cursor() as cur:
            for record in cur.stream(statement, size=size):
                if row_index >= XLSX_MAX_ROWS:
                    sheet = workbook.add_worksheet()
                    sheet.write_row(0, 0, columns, bold)
                    row_index = 1
                for col, value in enumerate(record):
                    cell = _xlsx_cell(value)
                    if cell is None:
                        continue
                    if type(cell) is date:
                        sheet.write_datetime(row_index, col, cell, date_format)
                    else:
                        sheet.write(row_index, col, cell)
                row_index += 1
                rows += 1
        if sheet is None:  # no rows: a workbook with the header only
            workbook.add_worksheet().write_row(0, 0, columns, bold)
        workbook.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return rows


# --------------------------------------------------------------------------- charts


def write_chart(
    conn: psycopg.Connection,
    statement: str,
    columns: tuple[str, ...],
    path: Path,
    *,
    format: str,
    chart: ChartSpec,
    title: str,
    slot: datetime | None,
) -> int:
    """Draw ``chart`` from its aggregate of ``statement`` into a PNG or PDF; return the points drawn."""
    from include.reports.charts import check_chart_columns
    from include.reports.definitions import InvalidReportError
    from include.reports.render import Document, fetch_chart_data, fetch_first_rows, render_pdf, render_png

    try:
        check_chart_columns(chart, columns)
    except InvalidReportError as error:
        raise ReportGenerationError(f"{error.field}: {str(error).split(': ', 1)[-1]}") from None
    data = fetch_chart_data(conn, chart, statement)
    if format == "png":
        render_png(chart, data, path, title=title)
    else:
        first_columns, first_rows = (
            fetch_first_rows(conn, statement, chart.table_rows) if chart.table_rows else ([], [])
        )
        document = Document(title=chart.title or title, slot=slot, generated_at=datetime.now(UTC))
        render_pdf(chart, data, first_columns, first_rows, path, document=document)
    return data.points


# --------------------------------------------------------------------------- files


def export_query(
    conn: psycopg.Connection,
    sql: str,
    parameters: Mapping[str, Any] | None,
    path: Path,
    *,
    format: str,
    wait_timeout: float = 3600.0,
    chart: ChartSpec | None = None,
    title: str = "report",
    slot: datetime | None = None,
) -> ExportResult:
    """Run ``sql`` (one read-only statement) and write it to ``path`` in ``format``.

    ``png`` and ``pdf`` draw ``chart`` (titled ``title``, for ``slot``) from its aggregate query.
    The file is written as ``.<name>.partial`` next to ``path`` and renamed only when complete;
    on failure the partial file is removed.
    """
    started = time.perf_counter()
    statement = bind_sql(conn, sql, parameters)
    columns = describe_statement(conn, statement)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        if format in CHART_FORMATS:
            if chart is None:
                raise ReportGenerationError(f"chart: format {format!r} needs a chart spec")
            rows = write_chart(conn, statement, columns, partial, format=format, chart=chart, title=title, slot=slot)
        elif format == "xlsx":
            rows = write_xlsx(conn, statement, columns, partial)
        else:
            with open(partial, "wb") as raw:
                if format == "csv.gz":
                    with gzip.GzipFile(filename=path.name[:-3], mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL) as gz:
                        rows = copy_csv(conn, statement, gz.write, wait_timeout=wait_timeout)
                else:
                    rows = copy_csv(conn, statement, raw.write, wait_timeout=wait_timeout)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return ExportResult(path, rows, path.stat().st_size, columns, time.perf_counter() - started)
