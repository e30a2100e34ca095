"""Each time limit of a report run bounds what its name says, and its error says which was exceeded
(real PostgreSQL, the real XLSX writer)."""

from __future__ import annotations

import time

import pytest

from include.reports.definitions import parse_request
from include.reports.export import export_query
from include.reports.generation import generate_run
from include.reports.limits import RunClock, TimeLimitExceeded, TimeLimits
from include.reports.planning import plan_runs
from tests.integration.reports.conftest import insert_report


def _run_of(db, name: str, **fields) -> int:
    insert_report(db, name=name, recipients=["team@example.com"], **fields)
    (run_id,) = plan_runs(parse_request({"report_name": name}), dag_run_id=f"manual__{name.replace(' ', '_')}")
    return run_id


def _error(db, run_id: int) -> tuple[str, str]:
    return db.execute("SELECT status, error FROM analytics_report_runs WHERE id = %s", [run_id]).fetchone()


def test_a_slow_query_fails_naming_the_query_limit(db, reports_env):
    from airflow.sdk.exceptions import AirflowFailException

    run_id = _run_of(db, "slow query", sql="SELECT pg_sleep(3) AS slept", format="xlsx", statement_timeout_seconds=1)
    with pytest.raises(AirflowFailException, match="the query time limit was exceeded"):
        generate_run(run_id, worker="test")
    status, error = _error(db, run_id)
    assert status == "failed"
    assert "the report's SQL ran longer than its statement timeout (limit 1 s, statement_timeout_seconds)" in error
    assert "file" not in error.split(";")[0] and "the query failed" not in error


def test_a_run_limit_shorter_than_the_query_limit_is_named(db, reports_env):
    from airflow.sdk.exceptions import AirflowFailException

    run_id = _run_of(
        db, "short run", sql="SELECT pg_sleep(3) AS slept", statement_timeout_seconds=60, run_timeout_seconds=1
    )
    with pytest.raises(AirflowFailException, match="the run time limit was exceeded"):
        generate_run(run_id, worker="test")
    assert "(limit 1 s, run_timeout_seconds)" in _error(db, run_id)[1]


class SlowFile(RunClock):
    """A run clock whose file phase takes ``delay`` seconds of real time at its first check."""

    def __init__(self, limits: TimeLimits, delay: float) -> None:
        super().__init__(limits)
        self.delay = delay

    def check_file(self, progress: str) -> None:
        if self.delay:
            time.sleep(self.delay)
            self.delay = 0
        super().check_file(progress)


@pytest.fixture
def read_only(_sales_table):
    """The reader connection report SQL runs on, with a statement timeout of 1 s."""
    from include.security.reader import reader_hook

    with reader_hook("tests").read_only_transaction(statement_timeout=1) as conn:
        yield conn


@pytest.mark.parametrize("fmt", ["xlsx", "csv.gz", "png"])
def test_writing_the_file_does_not_count_against_the_statement_timeout(read_only, tmp_path, fmt):
    """The statement timeout is 1 s; writing the file takes 1.5 s and still succeeds: the statement had ended."""
    chart = {"kind": "bar", "x": "paid", "y": "amount"} if fmt == "png" else None
    from include.reports.charts import parse_chart

    clock = SlowFile(TimeLimits(query_seconds=1, file_seconds=60, run_seconds=60), delay=1.5)
    result = export_query(
        read_only,
        "SELECT * FROM sales ORDER BY id",
        None,
        tmp_path / f"slow.{fmt}",
        format=fmt,
        chart=parse_chart(chart),
        clock=clock,
    )
    assert result.path.exists() and result.file_seconds >= 1.5 > result.query_seconds


def test_a_slow_file_fails_naming_the_file_limit_and_leaves_nothing(read_only, tmp_path):
    clock = SlowFile(TimeLimits(query_seconds=60, file_seconds=1, run_seconds=60), delay=1.2)
    with pytest.raises(TimeLimitExceeded, match="the file time limit was exceeded") as raised:
        export_query(
            read_only, "SELECT * FROM sales ORDER BY id", None, tmp_path / "big.xlsx", format="xlsx", clock=clock
        )
    assert raised.value.limit == "file" and "file_timeout_seconds" in str(raised.value)
    assert list(tmp_path.iterdir()) == []  # no partial file, no spool


def test_a_big_xlsx_is_complete_and_correct(read_only, db, tmp_path):
    """Past one sheet: typed cells (jsonb as its text, numbers, dates) read back with openpyxl (read-only mode)."""
    import openpyxl

    from include.reports import xlsx

    rows = 30_000
    sql = (
        "SELECT g AS id, 'region_' || (g % 7) AS region, (g * 1.5)::numeric(12, 2) AS amount,"
        " timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute' AS at,"
        " jsonb_build_object('sku', 'sku-' || g, 'qty', g % 13) AS payload"
        f" FROM generate_series(1, {rows}) AS g ORDER BY g"
    )
    per_sheet = 12_000
    original = xlsx.XLSX_MAX_ROWS
    xlsx.XLSX_MAX_ROWS = per_sheet + 1
    try:
        clock = RunClock(TimeLimits(60, 120, 180))
        result = export_query(read_only, sql, None, tmp_path / "big.xlsx", format="xlsx", clock=clock)
    finally:
        xlsx.XLSX_MAX_ROWS = original
    assert result.rows == rows
    workbook = openpyxl.load_workbook(tmp_path / "big.xlsx", read_only=True)
    assert workbook.sheetnames == ["Sheet1", "Sheet2", "Sheet3"]
    sheets = [list(sheet.iter_rows(values_only=True)) for sheet in workbook.worksheets]
    assert [len(s) for s in sheets] == [per_sheet + 1, per_sheet + 1, rows - 2 * per_sheet + 1]
    assert all(s[0] == ("id", "region", "amount", "at", "payload") for s in sheets)
    data = [row for sheet in sheets for row in sheet[1:]]
    session_zone = db.execute("SHOW TimeZone").fetchone()[0]
    for g in (1, 777, per_sheet, per_sheet + 1, rows):
        id_, region, amount, at, payload = data[g - 1]
        assert (int(id_), region, amount, payload) == (
            g,
            f"region_{g % 7}",
            g * 1.5,
            f'{{"qty": {g % 13}, "sku": "sku-{g}"}}',
        )
        assert (
            at.strftime("%Y-%m-%d %H:%M")
            == db.execute(
                "SELECT to_char((timestamptz '2026-01-01 00:00:00+00' + %s * interval '1 minute') AT TIME ZONE %s,"
                " 'YYYY-MM-DD HH24:MI')",
                [g, session_zone],
            ).fetchone()[0]
        )
