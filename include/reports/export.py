"""Run a report's query and write its file (CSV, gzipped CSV, XLSX, or a chart as PNG/PDF) at flat memory.

Two phases, so that each time limit bounds what its name says (:mod:`include.reports.limits`):

1. :func:`run_query`, inside the READ ONLY transaction with the statement timeout: CSV goes through
   ``COPY (<query>) TO STDOUT WITH (FORMAT csv, HEADER)`` straight to local disk (the server formats
   the rows, the client only moves bytes in blocks); XLSX rows are streamed and spooled to disk
   (:mod:`include.reports.xlsx`); a chart fetches its aggregate and first rows (:mod:`include.reports.render`).
2. :meth:`QueryResult.write`, after the statement (and the transaction) ended: gzip, the workbook or
   the drawing, under the file limit. The file is written under a temporary name and renamed when complete.

User SQL is bound client-side (``%(name)s`` placeholders), then checked to be exactly one
row-returning query by preparing and describing it on the server; the COPY and the row stream
are sent through the extended query protocol, which refuses several statements too. The caller
runs phase 1 on the reader role, in a READ ONLY transaction with a statement timeout
(:meth:`hooks.warehouse.WarehouseReaderHook.read_only_transaction`).
"""

from __future__ import annotations

import gc
import gzip
import os
import select
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.reports.charts import CHART_FORMATS
from include.reports.errors import ReportGenerationError, ReportQueryError

if TYPE_CHECKING:
    import psycopg

    from hooks.warehouse import WarehouseReaderHook
    from include.reports.charts import ChartSpec
    from include.reports.limits import RunClock

#: Bytes gathered from the COPY stream before one write to the file.
WRITE_BLOCK = 1 << 20
GZIP_LEVEL = 6


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int
    bytes: int
    columns: tuple[str, ...]
    seconds: float
    #: of ``seconds``: the statement (the query limit's part) and writing the file (the file limit's)
    query_seconds: float = 0.0
    file_seconds: float = 0.0
    #: the chart's PNG beside the file (a report with a chart that is not a ``png``), for the email
    chart_path: Path | None = None


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


# --------------------------------------------------------------------------- the two phases


@dataclass
class QueryResult:
    """The report's rows, fetched: the statement has ended and the file can be written from here.

    What was fetched depends on the format: the finished CSV file, the CSV text for csv.gz, the XLSX
    rows in a spool file, or the chart's aggregate and first rows (small, in memory).
    """

    format: str
    columns: tuple[str, ...]
    rows: int
    query_seconds: float
    spool: Path | None = None
    type_oids: tuple[int, ...] = ()
    chart: ChartSpec | None = None
    chart_data: Any = None
    first_rows: tuple[list[str], list[tuple]] = ([], [])
    document: Any = None
    #: also draw the chart's PNG beside the file (for the email of a report with a chart that is not a png)
    chart_image: bool = False

    def write(self, path: Path, *, clock: RunClock | None = None) -> ExportResult:
        """Write the file at ``path`` (as ``.<name>.partial``, renamed when complete); the file limit counts."""
        if clock is not None:
            clock.start_file()
        started = time.perf_counter()
        partial = path.with_name(f".{path.name}.partial")
        try:
            rows = self._write(partial, clock.check_file if clock is not None else None)
            chart_path = self._write_chart_image(path)
            if clock is not None:
                clock.check_file(f"writing all {rows:,} rows")
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            self.discard()
        file_seconds = time.perf_counter() - started
        return ExportResult(
            path,
            rows,
            path.stat().st_size,
            self.columns,
            self.query_seconds + file_seconds,
            self.query_seconds,
            file_seconds,
            chart_path,
        )

    def _write_chart_image(self, path: Path) -> Path | None:
        """The chart's PNG beside ``path`` when the report has a chart and is not itself the PNG."""
        if not self.chart_image or self.chart is None or self.chart_data is None or self.format == "png":
            return None
        from include.reports.render import render_png
        from include.reports.run_store import chart_image_name

        image = path.with_name(chart_image_name(path.name))
        render_png(self.chart, self.chart_data, image, title=self.document.title if self.document else "report")
        return image

    def discard(self) -> None:
        """Remove the spool (the file was written, or will not be)."""
        if self.spool is not None:
            self.spool.unlink(missing_ok=True)

    def _write(self, partial: Path, check: Callable[[str], None] | None) -> int:
        if self.format == "csv":
            os.replace(self.spool, partial)  # COPY wrote the file itself
            return self.rows
        if self.format == "csv.gz":
            return _gzip(self.spool, partial, self.rows, check)
        if self.format == "xlsx":
            from include.reports.xlsx import write_xlsx

            return write_xlsx(self.spool, self.rows, self.columns, self.type_oids, partial, check=check)
        from include.reports.render import render_pdf, render_png

        if self.format == "png":
            render_png(self.chart, self.chart_data, partial, title=self.document.title)
        else:
            columns, rows = self.first_rows
            render_pdf(self.chart, self.chart_data, columns, rows, partial, document=self.document)
        return self.chart_data.points


def _gzip(source: Path, target: Path, rows: int, check: Callable[[str], None] | None) -> int:
    done = 0
    with open(source, "rb") as src, open(target, "wb") as raw:
        with gzip.GzipFile(
            filename=target.name.removeprefix(".").removesuffix(".gz.partial"),
            mode="wb",
            fileobj=raw,
            compresslevel=GZIP_LEVEL,
        ) as out:
            while block := src.read(WRITE_BLOCK):
                out.write(block)
                done += len(block)
                if check is not None:
                    check(f"compressing {done / 1e6:,.0f} MB of CSV ({rows:,} rows)")
    return rows


def run_query(
    conn: psycopg.Connection,
    sql: str,
    parameters: Mapping[str, Any] | None,
    scratch: Path,
    *,
    format: str,
    wait_timeout: float = 3600.0,
    chart: ChartSpec | None = None,
    title: str = "report",
    slot: datetime | None = None,
    clock: RunClock | None = None,
    chart_image: bool = False,
) -> QueryResult:
    """Run ``sql`` (one read-only statement) and fetch what the ``format``'s file needs.

    Rows go to a spool file in ``scratch`` (never all into memory); ``png`` / ``pdf`` fetch the
    chart's aggregate and the first rows. A statement timeout becomes :class:`TimeLimitExceeded`
    naming the query limit (or the run limit, when that was shorter) when ``clock`` is given.
    ``chart_image``: a report with a ``chart`` that is not a ``png`` also gets the chart's PNG
    beside its file, for its email (a csv / csv.gz / xlsx fetches the chart's aggregate too).
    """
    started = time.perf_counter()
    statement = bind_sql(conn, sql, parameters)
    columns = describe_statement(conn, statement)
    scratch.mkdir(parents=True, exist_ok=True)
    result = QueryResult(format=format, columns=columns, rows=0, query_seconds=0.0, chart_image=chart_image)
    try:
        if format in CHART_FORMATS:
            _fetch_chart(conn, statement, result, chart=chart, title=title, slot=slot)
        else:
            handle, name = tempfile.mkstemp(prefix=".spool-", dir=scratch)
            os.close(handle)
            result.spool = Path(name)
            if format == "xlsx":
                from include.reports.xlsx import spool_rows

                result.rows, result.type_oids = spool_rows(conn, statement, result.spool)
            else:
                with open(result.spool, "wb") as raw:
                    result.rows = copy_csv(conn, statement, raw.write, wait_timeout=wait_timeout)
            if chart is not None and chart_image:  # a data report carrying a chart: its image, for the email
                _fetch_chart_image(conn, statement, result, chart=chart, title=title, slot=slot)
    except BaseException as error:
        result.discard()
        limit = clock.query_timed_out(error) if clock is not None else None
        if limit is not None:
            raise limit from error
        raise
    result.query_seconds = time.perf_counter() - started
    return result


def _fetch_chart(
    conn: psycopg.Connection,
    statement: str,
    result: QueryResult,
    *,
    chart: ChartSpec | None,
    title: str,
    slot: datetime | None,
) -> None:
    from include.reports.charts import check_chart_columns
    from include.reports.errors import InvalidReportError
    from include.reports.render import Document, fetch_chart_data, fetch_first_rows

    if chart is None:
        raise ReportGenerationError(f"chart: format {result.format!r} needs a chart spec")
    try:
        check_chart_columns(chart, result.columns)
    except InvalidReportError as error:
        raise ReportGenerationError(f"{error.field}: {str(error).split(': ', 1)[-1]}") from None
    result.chart = chart
    result.chart_data = fetch_chart_data(conn, chart, statement)
    result.rows = result.chart_data.points
    if result.format == "pdf" and chart.table_rows:
        result.first_rows = fetch_first_rows(conn, statement, chart.table_rows)
    result.document = Document(title=chart.title or title, slot=slot, generated_at=datetime.now(UTC))


def _fetch_chart_image(
    conn: psycopg.Connection,
    statement: str,
    result: QueryResult,
    *,
    chart: ChartSpec,
    title: str,
    slot: datetime | None,
) -> None:
    """The aggregate of the chart a csv / csv.gz / xlsx report carries (its rows stay the report's)."""
    rows = result.rows
    _fetch_chart(conn, statement, result, chart=chart, title=title, slot=slot)
    result.rows = rows


def export_query(
    conn: psycopg.Connection,
    sql: str,
    parameters: Mapping[str, Any] | None,
    path: Path,
    *,
    clock: RunClock | None = None,
    **options: Any,
) -> ExportResult:
    """:func:`run_query` (with its keyword ``options``: ``format``, ``chart``...) then
    :meth:`QueryResult.write` to ``path``, in one call, the scratch files next to ``path``.

    A report run calls the two itself (:func:`export_run`), so that the file is written after the
    transaction has ended.
    """
    fetched = run_query(conn, sql, parameters, path.parent, clock=clock, **options)
    return fetched.write(path, clock=clock)


def export_run(reader: WarehouseReaderHook, run: Mapping[str, Any], path: Path, clock: RunClock) -> ExportResult:
    """A report run's file at ``path``: the query on the reader, in a READ ONLY transaction bounded by
    ``clock``'s statement timeout, then the file written after the transaction has ended."""
    from include.reports.charts import parse_chart

    timeout = clock.statement_timeout()
    with reader.read_only_transaction(statement_timeout=timeout) as conn:
        fetched = run_query(
            conn,
            run["sql"],
            {"slot": run["slot"], **(run["parameters"] or {})},
            path.parent,
            format=run["format"],
            wait_timeout=timeout + 60,
            chart=parse_chart(run["chart"], report=run["report_name"]),
            title=run["report_name"],
            slot=run["slot"],
            clock=clock,
            chart_image=bool(run["recipients"]),  # the chart is shown inline in the email
        )
    return fetched.write(path, clock=clock)
