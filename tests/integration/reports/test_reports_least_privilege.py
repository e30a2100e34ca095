"""Report SQL, stored and ad hoc, runs on the reader role: every attack on the server is refused.

Through ``dag.test()`` of the reports DAG against the real server with real roles: the attacks of
``tests/support/attacks.py`` as stored reports (one scheduled run, beside a good report) and as
ad-hoc reports from the trigger's conf. Each fails with its error recorded, nothing is sent for
it, the good report is delivered, and nothing on the server changed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from tests.integration.reports.conftest import insert_report
from tests.support.attacks import server_witness
from tests.support.dags import run_dag


@pytest.fixture
def witness(test_env, reports_env):
    with server_witness(test_env.database_url, test_env.platform_url) as witness:
        yield witness


def _run_errors(db) -> dict[str, tuple[str, str | None]]:
    rows = db.execute("SELECT report_name, status, error FROM analytics_report_runs ORDER BY id").fetchall()
    return {name: (status, error) for name, status, error in rows}


def test_stored_reports_that_attack_the_server_fail_alone_and_change_nothing(db, reports_env, witness):
    created = datetime.now(UTC) - timedelta(hours=1, minutes=5)
    attacks = witness.attacks()
    for attack in attacks:
        insert_report(
            db,
            name=attack.name,
            sql=attack.sql,
            schedule="0 * * * *",
            recipients=[f"{attack.name}@example.com"],
            created_at=created,
        )
    insert_report(
        db,
        name="good",
        sql="SELECT count(*) AS n FROM sales",
        schedule="0 * * * *",
        recipients=["team@example.com"],
        created_at=created,
    )

    result = run_dag("reports")

    runs = _run_errors(db)
    assert runs["good"][0] == "delivered"
    for attack in attacks:
        status, error = runs[attack.name]
        assert status == "failed", (attack.name, runs[attack.name])
        assert attack.refused in error, (attack.name, error)
    smtp = reports_env["smtp"]
    assert [m.recipients for m in smtp.messages] == [["team@example.com"]]
    failed = {t for t, s in result.task_states.items() if s == "failed"}
    assert len(failed) == len(attacks)  # one failed generate per attack, the good one delivered
    witness.assert_unchanged()


@pytest.mark.parametrize(
    "attack_name",
    [
        "read_server_file",
        "list_data_directory",
        "read_pg_authid",
        "read_other_reports",
        "read_alert_outbox",
        "terminate_admin_session",
        "cancel_platform_session",
        "copy_to_program",
        "do_block",
        "lo_import",
        "set_role_back",
        "write_through_cte",
    ],
)
def test_an_adhoc_report_that_attacks_the_server_is_refused(db, reports_env, witness, capfd, attack_name):
    (attack,) = [a for a in witness.attacks() if a.name == attack_name]

    result = run_dag("reports", conf={"sql": attack.sql, "recipients": ["analyst@example.com"], "name": attack.name})

    assert result.state == "failed"
    out, err = capfd.readouterr()
    runs = _run_errors(db)
    if result.task_states["validate_request"] == "failed":  # refused before it ran: COPY, DO
        assert "invalid report request: field 'sql'" in out + err and attack.refused in out + err
        assert runs == {}
    else:
        status, error = runs[attack.name]
        assert status == "failed" and attack.refused in error, runs
    assert reports_env["smtp"].messages == []
    witness.assert_unchanged()


def test_a_superuser_reader_is_refused_before_any_report_sql_runs(db, reports_env, test_env, monkeypatch, capfd):
    admin = urlsplit(test_env.database_url).username
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_READER", test_env.database_url)  # the administrator

    result = run_dag("reports", conf={"sql": "SELECT 1 AS one", "recipients": ["analyst@example.com"]})

    assert result.state == "failed"
    assert result.task_states["validate_request"] == "failed"
    assert result.try_numbers["validate_request"] == 1  # a configuration error: no retries
    out, err = capfd.readouterr()
    assert f"connection 'warehouse_reader' (role {admin}) may not run user SQL: it is a superuser" in out + err
    assert _run_errors(db) == {}
    assert reports_env["smtp"].messages == []


@pytest.mark.parametrize(
    ("destination", "refused"),
    [
        ("file:///{dags}", "is not under an allowed destination; allowed: drops ("),
        ("s3://airflow_api@{bucket}/x", "is not under an allowed destination"),
        ("drops/../../etc", "may not have empty, '.' or '..' segments"),
        ("s3://airflow_api@allowed-bucket/x", "connection 'airflow_api' is not allowed there"),
    ],
)
def test_an_adhoc_destination_outside_the_allow_list_is_refused_and_nothing_is_written(
    db, reports_env, tmp_path, monkeypatch, capfd, destination, refused
):
    from devstack.airflow_env import PROJECT_ROOT
    from tests.integration.reports.conftest import S3_CONN_ID, allow_destinations

    allow_destinations(monkeypatch, {"name": "bucket", "url": "s3://allowed-bucket", "conn_id": S3_CONN_ID})
    dags = PROJECT_ROOT / "dags"
    before = sorted(dags.iterdir())
    destination = destination.format(dags=str(dags).lstrip("/"), bucket="some-bucket")

    result = run_dag("reports", conf={"sql": "SELECT 1 AS one", "destination": destination})

    assert result.state == "failed" and result.task_states["validate_request"] == "failed"
    out, err = capfd.readouterr()
    assert "invalid report request: field 'destination'" in out + err and refused in out + err
    assert _run_errors(db) == {}
    assert sorted(dags.iterdir()) == before


def test_every_recipient_up_to_the_maximum_gets_the_report_and_one_more_is_refused(db, reports_env, capfd):
    from include.settings import MAX_RECIPIENTS

    smtp = reports_env["smtp"]
    everyone = [f"reader{i:03d}@example.com" for i in range(MAX_RECIPIENTS)]

    too_many = run_dag("reports", conf={"sql": "SELECT 1 AS one", "recipients": [*everyone, "one-more@example.com"]})

    assert too_many.task_states["validate_request"] == "failed"
    out, err = capfd.readouterr()
    assert (
        f"field 'recipients': {MAX_RECIPIENTS + 1} recipients; a report is sent to at most {MAX_RECIPIENTS}"
        in out + err
    )
    assert smtp.messages == []

    delivered = run_dag("reports", conf={"sql": "SELECT 1 AS one", "recipients": everyone, "name": "everyone"})

    assert delivered.state == "success", delivered.task_states
    [message] = smtp.messages
    assert sorted(message.recipients) == everyone
    assert _run_errors(db)["everyone"] == ("delivered", None)
