"""Claims: concurrent or crashed deliveries never send a report twice (steps called directly)."""

from __future__ import annotations

import threading

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


def test_a_delivery_left_sending_by_a_dead_task_waits_for_its_claim_to_expire(db, reports_env):
    run_id = _generated_run(db)
    deliver_run(run_id, worker="first")
    # The email went out but the task died before it could record that: the row is still "sending".
    db.execute(
        "UPDATE analytics_report_deliveries SET status = 'sending', claimed_by = 'dead',"
        " claim_expires_at = now() + interval '1 hour'"
    )
    db.execute("UPDATE analytics_report_runs SET status = 'generated'")
    smtp = reports_env["smtp"]

    summary = deliver_run(run_id, worker="retry")
    assert summary["waiting"] == ["email team@example.com"]
    assert len(smtp.messages) == 1  # not sent again while it may have gone out

    db.execute("UPDATE analytics_report_deliveries SET claim_expires_at = now() - interval '1 second'")
    deliver_run(run_id, worker="later")
    assert len(smtp.messages) == 2  # the lease expired: at-least-once from here on
    assert db.execute("SELECT status FROM analytics_report_runs").fetchone()[0] == "delivered"


def test_a_run_is_generated_once_even_if_asked_again(db, reports_env):
    run_id = _generated_run(db)
    location = db.execute("SELECT location FROM analytics_report_runs").fetchone()[0]

    again = generate_run(run_id, worker="test/generate-retry")

    assert again["note"] == "already generated" and again["location"] == location
    assert db.execute("SELECT attempts FROM analytics_report_runs").fetchone()[0] == 1
