"""The rows of report runs and deliveries: what every step of the ``reports`` DAG shares.

Every step records its state in ``analytics_report_runs`` / ``analytics_report_deliveries`` and
takes an atomic claim first, so a retried or concurrent task never generates a run twice or sends
a delivery twice: a run is unique per report and slot (or per ad-hoc trigger), a delivery per run,
channel and target, and a delivery marked ``sent`` is never claimed again. The steps:
:mod:`~include.reports.planning`, :mod:`~include.reports.generation`,
:mod:`~include.reports.run_delivery`, :mod:`~include.reports.retention`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from include.reports.config import ReportSettings
from include.reports.storage import safe_name
from include.sql import load_sql

if TYPE_CHECKING:
    from hooks.warehouse import WarehouseHook, WarehouseReaderHook


@dataclass
class Services:
    """What every step needs: the platform's hook (runs, deliveries), the reader (report SQL), the settings."""

    hook: WarehouseHook
    settings: ReportSettings
    reader: WarehouseReaderHook

    @classmethod
    def create(cls, settings: ReportSettings | None = None) -> Services:
        from hooks.warehouse import WarehouseHook
        from include.security.reader import reader_hook

        return cls(
            WarehouseHook(application_name="analytics-platform-reports"),
            settings or ReportSettings.from_env(),
            reader_hook("analytics-platform-reports"),
        )


def rows(conn, name: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The rows of ``include/sql/reports/<name>.sql`` as dicts (none for a statement without result)."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(load_sql(f"reports/{name}.sql"), params or {})
        return cur.fetchall() if cur.description else []


def one(conn, name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The first row of ``include/sql/reports/<name>.sql``, or ``None``."""
    found = rows(conn, name, params)
    return found[0] if found else None


def error_text(error: BaseException) -> str:
    """What is recorded and shown of an error: its type and text, secrets in URLs masked."""
    from observability.redaction import redact

    return redact(f"{type(error).__name__}: {error}")[:2000]


def mark_failed(ctx: Services, run_id: int, error: str, status: str) -> None:
    """Record a run's error; ``status`` ``pending`` lets it be tried again, ``failed`` does not."""
    with ctx.hook.transaction() as conn:
        conn.execute(load_sql("reports/mark_run_failed.sql"), {"run_id": run_id, "error": error, "status": status})


def run_file_name(run: Mapping[str, Any]) -> str:
    """``<report>[_<audience>]_<slot UTC>_run<id>.<format>``: unique per run, sorted by slot."""
    slot: datetime = run["slot"].astimezone(UTC)
    audience = f"_{safe_name(run['audience'])}" if run.get("audience") else ""
    return f"{safe_name(run['report_name'])}{audience}_{slot:%Y%m%dT%H%M%SZ}_run{run['id']}.{run['format']}"


#: Suffix of the chart image archived beside the file of a report that carries a chart but is not a ``png``.
CHART_IMAGE_SUFFIX = ".chart.png"


def chart_image_name(file_name: str) -> str:
    """``<report>_<slot>_run<id>.chart.png``: the chart image archived beside ``file_name``."""
    stem = file_name[: -len(".csv.gz")] if file_name.endswith(".csv.gz") else file_name.rsplit(".", 1)[0]
    return stem + CHART_IMAGE_SUFFIX


def chart_image_location(run: Mapping[str, Any]) -> str | None:
    """Where the PNG of a generated run's chart is: its file (``png``), the image beside it, or ``None`` (no chart)."""
    if not run.get("chart") or not run.get("location"):
        return None
    if run["format"] == "png":
        return run["location"]
    return run["location"].rsplit("/", 1)[0] + "/" + chart_image_name(run["location"].rsplit("/", 1)[1])


def summary(run: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """A run as a task returns it (the XCom)."""
    return {
        "run_id": run["id"],
        "report": run["report_name"],
        "audience": run.get("audience"),
        "status": run["status"],
        "rows": run.get("rows"),
        "bytes": run.get("bytes"),
        "location": run.get("location"),
        **extra,
    }
