"""Retention of report files: what runs past their report's retention left behind, and staging leftovers."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from typing import Any

from include.reports.config import ReportSettings
from include.reports.errors import CleanupError
from include.reports.run_store import Services, error_text, rows
from include.sql import load_sql
from observability import metrics

log = logging.getLogger(__name__)

#: Leftover local staging directories older than this are removed by the cleanup.
STAGING_MAX_AGE = timedelta(days=1)


def cleanup_expired(*, services: Services | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Delete the files of runs past their report's retention (archive and object storage copies)
    and leftover local staging files. Each run is handled on its own: one failure does not stop the rest.
    """
    from include.reports.run_store import chart_image_location
    from include.reports.storage import delete

    ctx = services or Services.create()
    now = now or datetime.now(UTC)
    with ctx.hook.transaction() as conn:
        expired = rows(conn, "select_expired_runs", {"now": now})
    deleted = 0
    failures = []
    for run in expired:
        try:
            chart = chart_image_location(run)
            images = [chart] if chart and chart != run["location"] else []
            for location in [run["location"], *images, *run["copies"]]:
                if delete(location):
                    deleted += 1
        except Exception as error:
            failures.append(f"run {run['id']} ({run['report_name']}): {error_text(error)}")
            log.warning("could not delete the files of report run %s: %s", run["id"], error)
            continue
        with ctx.hook.transaction() as conn:
            conn.execute(load_sql("reports/mark_run_cleaned.sql"), {"run_id": run["id"]})
    staging_removed = _clean_staging(ctx.settings, now)
    if deleted:
        metrics.incr("reports.cleaned", deleted)
    log.info(
        "retention: %d expired run(s), %d file(s) deleted, %d staging dir(s) removed",
        len(expired),
        deleted,
        staging_removed,
    )
    if failures:
        raise CleanupError(f"{len(failures)} expired run(s) could not be cleaned: " + "; ".join(failures))
    return {"expired_runs": len(expired), "files_deleted": deleted, "staging_removed": staging_removed}


def _clean_staging(settings: ReportSettings, now: datetime) -> int:
    root = settings.staging_dir
    if not root.is_dir():
        return 0
    cutoff = (now - STAGING_MAX_AGE).timestamp()
    removed = 0
    for entry in root.iterdir():
        try:
            if entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
                removed += 1
        except OSError as error:
            log.warning("could not remove staging leftover %s: %s", entry, error)
    return removed
