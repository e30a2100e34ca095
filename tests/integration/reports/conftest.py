"""Fixtures of the reports tests: a moto S3 server, SMTP, a sales table, report definitions."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.connections import smtp_connection

#: Airflow connection of the S3 server in these tests.
S3_CONN_ID = "aws_reports"


@pytest.fixture(scope="session")
def s3_server() -> Iterator:
    """One moto S3 server per session (Airflow caches object stores per connection id)."""
    from tests.support.s3 import MotoS3

    with MotoS3() as server:
        os.environ[f"AIRFLOW_CONN_{S3_CONN_ID.upper()}"] = server.connection_json()
        yield server
        os.environ.pop(f"AIRFLOW_CONN_{S3_CONN_ID.upper()}", None)


@pytest.fixture
def bucket(s3_server) -> str:
    return s3_server.create_bucket(f"reports-{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def _sales_table(database_url: str) -> None:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            """
            CREATE TABLE IF NOT EXISTS sales AS
            SELECT g AS id,
                   'customer "' || (g % 7) || '", inc' AS customer,
                   round((g * 1.25)::numeric, 2) AS amount,
                   timestamptz '2026-01-01 00:00:00+00' + g * interval '1 hour' AS sold_at,
                   (g % 2 = 0) AS paid
            FROM generate_series(1, 40) AS g
            """
        )
        conn.execute("CREATE TABLE IF NOT EXISTS report_victim (id int)")


def allow_destinations(monkeypatch: pytest.MonkeyPatch, *roots: dict[str, Any]) -> None:
    """Add ``roots`` to the operator's allowed report destinations (``REPORTS_ALLOWED_DESTINATIONS``)."""
    import json
    import os

    allowed = json.loads(os.environ.get("REPORTS_ALLOWED_DESTINATIONS") or "[]")
    monkeypatch.setenv("REPORTS_ALLOWED_DESTINATIONS", json.dumps([*allowed, *roots]))


@pytest.fixture
def reports_env(db, _sales_table, smtp_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Empty report tables, SMTP pointed at the test server, archive and staging under tmp_path, and
    the test's directory allowed as a destination (``drops``)."""
    db.execute(
        "TRUNCATE analytics_report_deliveries, analytics_report_runs, analytics_reports RESTART IDENTITY CASCADE"
    )
    archive = tmp_path / "archive"
    staging = tmp_path / "staging"
    monkeypatch.setenv("REPORTS_STORAGE_URL", archive.as_uri())
    monkeypatch.delenv("REPORTS_STORAGE_CONN_ID", raising=False)
    monkeypatch.setenv("REPORTS_STAGING_DIR", str(staging))
    monkeypatch.setenv("REPORTS_MAX_ATTACHMENT_BYTES", str(10 * 1024 * 1024))
    monkeypatch.delenv("REPORTS_ALLOWED_DESTINATIONS", raising=False)
    allow_destinations(monkeypatch, {"name": "drops", "url": tmp_path.as_uri()})
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        smtp_connection(
            smtp_server.host, smtp_server.port, from_email="reports@platform.test", retry_limit=0, timeout=5
        ),
    )
    return {"archive": archive, "staging": staging, "smtp": smtp_server}


def insert_report(db, **fields: Any) -> int:
    """Insert a report definition (JSON fields as Python objects); return its id."""
    from psycopg import sql
    from psycopg.types.json import Jsonb

    values = {
        k: Jsonb(v) if k in ("parameters", "destinations", "chart", "audiences") else v for k, v in fields.items()
    }
    query = sql.SQL("INSERT INTO analytics_reports ({}) VALUES ({}) RETURNING id").format(
        sql.SQL(", ").join(map(sql.Identifier, values)), sql.SQL(", ").join(map(sql.Placeholder, values))
    )
    return db.execute(query, values).fetchone()[0]


def sales_csv(db, where: str = "TRUE") -> list[list[str]]:
    """The sales rows as the server formats them in CSV (header first), for comparing with a report."""
    import csv
    import io

    buffer = io.BytesIO()
    with db.cursor().copy(
        f"COPY (SELECT * FROM sales WHERE {where} ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)"
    ) as copy:
        for block in copy:
            buffer.write(block)
    return list(csv.reader(io.StringIO(buffer.getvalue().decode())))


def plant_run(db, *, location: str, age_days: float, retention_days: int, copies: tuple[str, ...] = ()) -> int:
    """A delivered run generated ``age_days`` ago whose file is at ``location`` (and object storage ``copies``)."""
    run_id = db.execute(
        """
        INSERT INTO analytics_report_runs (report_name, trigger, slot, run_key, sql, format, retention_days,
            statement_timeout_seconds, file_timeout_seconds, run_timeout_seconds, max_attachment_bytes, status,
            file_name, location, generated_at, created_at)
        VALUES ('planted', 'adhoc', now() - make_interval(days => %(age)s), 'planted:' || gen_random_uuid(),
            'SELECT 1', 'csv', %(retention)s, 60, 60, 60, 1000, 'delivered', 'planted.csv', %(location)s,
            now() - make_interval(days => %(age)s), now() - make_interval(days => %(age)s))
        RETURNING id
        """,
        {"age": age_days, "retention": retention_days, "location": location},
    ).fetchone()[0]
    for copy in copies:
        db.execute(
            "INSERT INTO analytics_report_deliveries (run_id, channel, target, status, location)"
            " VALUES (%s, 'object_storage', %s, 'sent', %s)",
            [run_id, copy.rsplit("/", 1)[0], copy],
        )
    return run_id
