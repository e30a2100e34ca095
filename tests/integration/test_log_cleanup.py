"""Log cleanup: old rows deleted in batches, counts recorded, a bad table name reported by name."""

from __future__ import annotations

import secrets

import pytest

from include.analytics.cleanup import LogCleanupError, clean_logs
from include.analytics.config import LogCleanupSettings


@pytest.fixture
def hook():
    from hooks.warehouse import WarehouseHook

    return WarehouseHook()


@pytest.fixture
def job() -> str:
    """A job name of this test's own, so rows of other tests in the session database do not count."""
    return f"cleanup-test-{secrets.token_hex(3)}"


def _seed(db, job: str, old: int, recent: int) -> None:
    db.execute(
        "INSERT INTO analytics_refresh_log (job, target, status, started_at) "
        "SELECT %s, 'old', 'success', now() - interval '45 days' - g * interval '1 second' "
        "FROM generate_series(1, %s) g",
        [job, old],
    )
    db.execute(
        "INSERT INTO analytics_refresh_log (job, target, status, started_at) "
        "SELECT %s, 'recent', 'success', now() - interval '3 days' FROM generate_series(1, %s) g",
        [job, recent],
    )


def _left(db, job: str) -> dict[str, int]:
    rows = db.execute(
        "SELECT target, count(*) FROM analytics_refresh_log WHERE job = %s GROUP BY target", [job]
    ).fetchall()
    return dict(rows)


def test_old_rows_go_in_batches_up_to_the_limit_and_the_next_run_finishes(db, hook, job):
    _seed(db, job, old=2500, recent=10)
    settings = LogCleanupSettings(retention_days={"analytics_refresh_log": 30}, batch_size=1000, max_batches=2)

    first = {r.table: r for r in clean_logs(hook, settings, dag_run_id="cleanup-1")}
    assert _left(db, job) == {"old": 500, "recent": 10}
    log = first["analytics_refresh_log"]
    assert (log.deleted, log.batches, log.complete) == (2000, 2, False)

    second = {r.table: r for r in clean_logs(hook, settings, dag_run_id="cleanup-2")}
    assert _left(db, job) == {"recent": 10}
    assert second["analytics_refresh_log"].complete and second["analytics_refresh_log"].deleted >= 500
    recorded = db.execute(
        "SELECT dag_run_id, status, details FROM analytics_refresh_log "
        "WHERE job = 'log_cleanup' AND target = 'analytics_refresh_log' ORDER BY id"
    ).fetchall()
    assert [(r[0], r[1], r[2]["deleted"], r[2]["batches"]) for r in recorded[-2:]] == [
        ("cleanup-1", "success", 2000, 2),
        ("cleanup-2", "success", second["analytics_refresh_log"].deleted, 1),
    ]


def test_an_unknown_table_is_reported_by_name_and_the_others_are_still_cleaned(db, hook, job):
    _seed(db, job, old=20, recent=1)
    settings = LogCleanupSettings(retention_days={"analytics_refresh_log": 30, "audit_trail": 7})

    with pytest.raises(LogCleanupError, match="audit_trail: log_cleanup.retention_days names unknown table") as raised:
        clean_logs(hook, settings, dag_run_id="cleanup-bad")
    assert raised.value.retryable is False  # a configuration mistake: failing again would not help

    assert _left(db, job) == {"recent": 1}
    recorded = dict(
        db.execute(
            "SELECT target, status FROM analytics_refresh_log WHERE job = 'log_cleanup' AND dag_run_id = 'cleanup-bad'"
        ).fetchall()
    )
    assert recorded == {"analytics_refresh_log": "success", "audit_trail": "failed"}
