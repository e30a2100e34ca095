"""Claims: concurrent or crashed deliveries never send a report twice (steps called directly)."""

from __future__ import annotations

import threading

import pytest

from include.reports.definitions import parse_request
from include.reports.generation import generate_run
from include.reports.planning import plan_runs
from include.reports.run_delivery import deliver_run
from tests.integration.reports.conftest import insert_report


def _generated_run(db) -> int:
    insert_report(db, name="claimed", sql="SELECT * FROM sales ORDER BY id", recipients=["team@example.com"])
    (run_id,) = plan_runs(parse_request({"report_name": "claimed"}), dag_run_id="manual__claims")
    generate_run(run_id, worker="test/generate")
    return run_id


def test_two_workers_delivering_the_same_run_send_one_email(db, reports_env):
    run_id = _generated_run(db)
    start = threading.Barrier(2)
    results, errors = [], []

    def worker(name: str) -> None:
        start.wait()
        try:
            results.append(deliver_run(run_id, worker=name))
        except Exception as error:  # pragma: no cover - shown by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(f"worker-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(reports_env["smtp"].messages) == 1
    assert sorted(r["sent"] for r in results) == [0, 1]
    assert db.execute("SELECT status, attempts FROM analytics_report_deliveries").fetchall() == [("sent", 1)]


def test_a_delivery_being_sent_by_a_live_worker_is_left_to_it(db, reports_env):
    from delivery.recording import DeliveryWorker
    from hooks.warehouse import WarehouseHook

    run_id = _generated_run(db)
    deliver_run(run_id, worker="first")
    smtp = reports_env["smtp"]
    with DeliveryWorker(WarehouseHook(), label="alive") as alive:
        # that worker sent it and is recording: the row is still "sending", its heartbeat fresh
        db.execute("UPDATE analytics_report_deliveries SET status = 'sending', claimed_by = %s", [alive.id])
        db.execute("UPDATE analytics_report_runs SET status = 'generated'")
        summary = deliver_run(run_id, worker="retry")
    assert summary["waiting"] == ["email team@example.com"]
    assert len(smtp.messages) == 1  # not sent again while its worker lives
    assert db.execute("SELECT status FROM analytics_report_deliveries").fetchone()[0] == "sending"


def test_an_email_left_sending_by_a_dead_worker_becomes_unknown_and_is_never_sent_twice(db, reports_env):
    from include.reports.run_delivery import DeliveryGaveUp

    run_id = _generated_run(db)
    deliver_run(run_id, worker="first")
    # The email went out but its worker died before it could record that: the row is still "sending".
    db.execute("UPDATE analytics_report_deliveries SET status = 'sending', claimed_by = 'dead', claimed_at = now()")
    db.execute("UPDATE analytics_report_runs SET status = 'generated'")

    with pytest.raises(DeliveryGaveUp, match="unknown outcome"):
        deliver_run(run_id, worker="retry")

    assert len(reports_env["smtp"].messages) == 1
    status, error = db.execute("SELECT status, error FROM analytics_report_deliveries").fetchone()
    assert status == "unknown"
    assert error.startswith("outcome unknown: worker dead claimed it at ")
    assert "(it is not a registered delivery worker)" in error and "not sent again" in error
    run_status, run_error = db.execute("SELECT status, error FROM analytics_report_runs").fetchone()
    assert run_status == "failed" and "email team@example.com: unknown: outcome unknown" in run_error


def test_a_run_is_generated_once_even_if_asked_again(db, reports_env):
    run_id = _generated_run(db)
    location = db.execute("SELECT location FROM analytics_report_runs").fetchone()[0]

    again = generate_run(run_id, worker="test/generate-retry")

    assert again["note"] == "already generated" and again["location"] == location
    assert db.execute("SELECT attempts FROM analytics_report_runs").fetchone()[0] == 1


def test_an_open_mail_server_breaker_defers_the_email_without_counting_an_attempt(db, reports_env, monkeypatch):
    import json

    from hooks import circuit_breaker
    from include.reports.errors import DeliveryError

    breakers = {"external_api": {"failure_threshold": 1, "recovery_timeout": 60}}
    monkeypatch.setenv("CIRCUIT_BREAKERS", json.dumps(breakers))
    circuit_breaker._config_cache.clear()
    run_id = _generated_run(db)
    smtp = reports_env["smtp"]
    smtp.mail_reply = "421 4.3.2 try again later"
    with pytest.raises(DeliveryError, match="tried again"):
        deliver_run(run_id, worker="first")  # transient, counts: the breaker opens
    smtp.mail_reply = None

    with pytest.raises(DeliveryError, match="not attempted"):
        deliver_run(run_id, worker="second")

    circuit_breaker._config_cache.clear()
    assert smtp.messages == []
    status, attempts, error = db.execute("SELECT status, attempts, error FROM analytics_report_deliveries").fetchone()
    assert (status, attempts) == ("pending", 1) and "circuit" in error.lower()
    assert db.execute("SELECT status FROM analytics_report_runs").fetchone()[0] == "generated"


def test_a_permanent_failure_is_not_retried_and_the_owner_is_told_once(db, reports_env):
    from include.reports.run_delivery import DeliveryGaveUp

    insert_report(
        db, name="refused", sql="SELECT 1 AS one", recipients=["nobody@example.com"], owner="owner@example.com"
    )
    (run_id,) = plan_runs(parse_request({"report_name": "refused"}), dag_run_id="manual__refused")
    generate_run(run_id, worker="test/generate")
    smtp = reports_env["smtp"]
    smtp.refused["nobody@example.com"] = "550 5.1.1 no such user"

    with pytest.raises(DeliveryGaveUp, match="failed for good"):
        deliver_run(run_id, worker="first")

    status, error, told = db.execute("SELECT status, error, owner_told_at FROM analytics_report_deliveries").fetchone()
    assert status == "failed" and error.startswith("failed for good: ") and "550" in error and told is not None
    [notice] = smtp.messages
    assert notice.recipients == ["owner@example.com"] and "delivery problem" in notice.subject
    assert "nobody@example.com" in notice.body()
    run_status, run_error = db.execute("SELECT status, error FROM analytics_report_runs").fetchone()
    assert run_status == "failed" and "550" in run_error


def test_a_transient_failure_is_tried_again_until_the_attempts_run_out(db, reports_env, monkeypatch):
    from include.reports.errors import DeliveryError
    from include.reports.run_delivery import DeliveryGaveUp

    monkeypatch.setenv("REPORTS_MAX_ATTEMPTS", "2")
    run_id = _generated_run(db)
    smtp = reports_env["smtp"]
    smtp.data_reply = "451 4.3.0 try again later"

    with pytest.raises(DeliveryError, match="tried again") as first:
        deliver_run(run_id, worker="first")
    assert not isinstance(first.value, DeliveryGaveUp)  # the task's retries may still deliver it
    with pytest.raises(DeliveryGaveUp, match="failed for good or have an unknown outcome"):
        deliver_run(run_id, worker="second")

    status, attempts, error = db.execute("SELECT status, attempts, error FROM analytics_report_deliveries").fetchone()
    assert (status, attempts) == ("failed", 2) and error.startswith("attempt 2 of 2: ") and "451" in error
    assert db.execute("SELECT status FROM analytics_report_runs").fetchone()[0] == "failed"
    assert smtp.messages == []


def test_a_destination_no_longer_allowed_fails_for_good_and_nothing_is_written(db, reports_env, monkeypatch, tmp_path):
    from include.reports.run_delivery import DeliveryGaveUp

    target = tmp_path / "drop-here"
    insert_report(db, name="moved", sql="SELECT 1 AS one", destinations=[target.as_uri()])
    (run_id,) = plan_runs(parse_request({"report_name": "moved"}), dag_run_id="manual__moved")
    generate_run(run_id, worker="test/generate")
    monkeypatch.setenv("REPORTS_ALLOWED_DESTINATIONS", "[]")  # the operator withdrew it meanwhile

    with pytest.raises(DeliveryGaveUp, match="failed for good"):
        deliver_run(run_id, worker="first")

    status, attempts, error = db.execute("SELECT status, attempts, error FROM analytics_report_deliveries").fetchone()
    from include.reports.config import ReportSettings

    assert status == "failed" and attempts == ReportSettings.from_env().max_attempts  # never tried again
    assert "DestinationNotAllowed" in error
    assert not target.exists()
