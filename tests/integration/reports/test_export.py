"""Streaming export against the real warehouse: content, formats, and what user SQL may not do."""

from __future__ import annotations

import csv
import gzip
import io

import psycopg
import pytest

from include.reports.export import ReportQueryError, copy_csv, export_query
from tests.integration.reports.conftest import sales_csv


@pytest.fixture
def read_only(_sales_table, db):
    """A reader connection in the READ ONLY transaction with a statement timeout that report SQL runs in."""
    from include.security.reader import reader_hook

    db.execute("TRUNCATE report_victim")
    with reader_hook("tests").read_only_transaction(statement_timeout=1) as conn:
        yield conn


def _victim_intact(db) -> bool:
    exists = db.execute("SELECT to_regclass('report_victim') IS NOT NULL").fetchone()[0]
    return exists and db.execute("SELECT count(*) FROM report_victim").fetchone()[0] == 0


def test_csv_and_gzipped_csv_match_the_query(read_only, db, tmp_path):
    plain = export_query(read_only, "SELECT * FROM sales ORDER BY id;", None, tmp_path / "s.csv", format="csv")
    zipped = export_query(read_only, "SELECT * FROM sales ORDER BY id", None, tmp_path / "s.csv.gz", format="csv.gz")

    assert plain.rows == zipped.rows == 40
    assert plain.columns == ("id", "customer", "amount", "sold_at", "paid")
    expected = sales_csv(db)
    assert list(csv.reader(io.StringIO((tmp_path / "s.csv").read_text()))) == expected
    assert list(csv.reader(io.StringIO(gzip.decompress((tmp_path / "s.csv.gz").read_bytes()).decode()))) == expected
    assert plain.bytes == (tmp_path / "s.csv").stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv", "s.csv.gz"]  # no partial files left


def test_xlsx_has_a_header_and_typed_cells(read_only, tmp_path):
    import openpyxl

    result = export_query(
        read_only,
        "SELECT id, amount, sold_at, sold_at::date AS day, paid, '=1+1' AS text, NULL::int AS nothing,"
        " '{\"a\": 1}'::jsonb AS doc FROM sales WHERE id <= 2 ORDER BY id",
        None,
        tmp_path / "s.xlsx",
        format="xlsx",
    )

    assert result.rows == 2
    sheet = openpyxl.load_workbook(tmp_path / "s.xlsx").worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == ["id", "amount", "sold_at", "day", "paid", "text", "nothing", "doc"]
    assert rows[1][0] == 1 and rows[1][1] == 1.25 and rows[1][4] is False
    assert rows[1][2].isoformat() == "2026-01-01T01:00:00" and rows[1][3].date().isoformat() == "2026-01-01"
    assert rows[1][5] == "=1+1"  # text stays text, never a formula
    assert rows[1][6] is None and rows[1][7] == '{"a": 1}'


def test_parameters_are_bound_as_values(read_only, db, tmp_path):
    hostile = "x'); DROP TABLE report_victim; --"
    result = export_query(
        read_only,
        "SELECT %(label)s AS label, count(*) AS n FROM sales WHERE amount > %(min)s AND customer LIKE 'customer%%'",
        {"label": hostile, "min": 40},
        tmp_path / "p.csv",
        format="csv",
    )

    assert result.rows == 1
    assert list(csv.reader(io.StringIO((tmp_path / "p.csv").read_text()))) == [["label", "n"], [hostile, "8"]]
    assert _victim_intact(db)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 AS a; DROP TABLE report_victim",
        "SELECT 1 AS a; COMMIT; INSERT INTO report_victim VALUES (1) RETURNING id",
        "SELECT 1) TO STDOUT; COMMIT; DROP TABLE report_victim; COPY (SELECT 1",
        "SELECT 1 AS a\n;\nCOMMIT;\nDELETE FROM report_victim RETURNING id",
    ],
)
def test_sql_cannot_smuggle_a_second_statement(read_only, db, tmp_path, sql):
    with pytest.raises((ReportQueryError, psycopg.errors.SyntaxError)):
        export_query(read_only, sql, None, tmp_path / "x.csv", format="csv")
    assert _victim_intact(db)
    assert not (tmp_path / "x.csv").exists()


def test_copy_itself_runs_only_one_statement(read_only, db):
    """Even without the describe check, COPY goes through the extended protocol: one statement only."""
    smuggled = "SELECT 1) TO STDOUT; COMMIT; INSERT INTO report_victim VALUES (2); COPY (SELECT 1"
    with pytest.raises(psycopg.errors.SyntaxError, match="multiple commands"):
        copy_csv(read_only, smuggled, io.BytesIO().write)
    assert _victim_intact(db)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("INSERT INTO report_victim VALUES (1) RETURNING id", "INSERT statements never run"),
        ("WITH gone AS (DELETE FROM report_victim RETURNING id) SELECT * FROM gone", "read-only transaction"),
        ("SELECT set_config('transaction_read_only', 'off', true) AS x", "read-write mode"),
        ("DELETE FROM report_victim", "DELETE statements never run"),
        ("SELECT pg_sleep(5) AS slow", "statement timeout"),
    ],
)
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_sql_that_writes_or_runs_too_long_is_refused(read_only, db, tmp_path, sql, message, fmt):
    from include.reports.generation import is_query_error

    with pytest.raises((ReportQueryError, psycopg.Error), match=message) as raised:
        export_query(read_only, sql, None, tmp_path / f"x.{fmt}", format=fmt)
    assert is_query_error(raised.value)  # the run fails without retries
    assert _victim_intact(db)
    assert list(tmp_path.iterdir()) == []


def test_xlsx_continues_on_a_new_sheet_when_one_is_full(read_only, tmp_path, monkeypatch):
    import openpyxl

    from include.reports import xlsx

    monkeypatch.setattr(xlsx, "XLSX_MAX_ROWS", 16)  # a header and 15 rows per sheet
    result = export_query(read_only, "SELECT id FROM sales ORDER BY id", None, tmp_path / "s.xlsx", format="xlsx")

    assert result.rows == 40
    sheets = openpyxl.load_workbook(tmp_path / "s.xlsx").worksheets
    values = [[row[0] for row in sheet.iter_rows(values_only=True)] for sheet in sheets]
    assert [v[0] for v in values] == ["id", "id", "id"]
    assert [i for v in values for i in v[1:]] == list(range(1, 41))
