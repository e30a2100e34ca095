"""One answer everywhere: every fault of a real server means the same to every caller of the delivery layer.

Each case makes a real server misbehave (aiosmtpd answering 421, 451 or 550, or dropping the
connection after DATA; an HTTP server answering 429, 5xx or 4xx; a closed port; a server that
never answers) and sends through each caller: the alerts outbox, report deliveries, the
task-failure notifier (and the Slack file upload that reports' Slack delivery calls). Each must
see the same verdict (permanent or transient), and the failure must count against the server's
breaker exactly when the table says so.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from types import SimpleNamespace

import pytest

from include.alerts.outbox import deliver_pending
from notifiers.task_failure import TaskFailureNotifier
from tests.integration.reports.conftest import _sales_table, reports_env  # noqa: F401 - fixtures
from tests.support.alerts import TEST_SETTINGS, clean_alert_tables, evaluate, make_alert, notifications
from tests.support.connections import connection_json, smtp_connection
from tests.support.servers import SilentServer, SlackApiServer, SmtpSink, free_port

RECIPIENTS = ["first@example.com", "second@example.com"]
#: (case, permanent, counts against the breaker)
SMTP_CASES = [
    ("connect refused", False, True),
    ("421 at MAIL FROM", False, True),
    ("451 at DATA", False, True),
    ("550 for one recipient", True, False),
    ("550 for every recipient", True, False),
    ("disconnect after DATA", False, True),
    ("timeout", False, True),
]
HTTP_CASES = [
    ("connect refused", False, True),
    ("timeout", False, True),
    ("429", False, True),
    ("500", False, True),
    ("502", False, True),
    ("400", True, False),
    ("404", True, False),
]


@pytest.fixture(autouse=True)
def _clean(db, monkeypatch):
    clean_alert_tables(db)
    db.execute(
        "TRUNCATE analytics_report_deliveries, analytics_report_runs, analytics_reports RESTART IDENTITY CASCADE"
    )
    monkeypatch.setenv(
        "CIRCUIT_BREAKERS", json.dumps({"external_api": {"failure_threshold": 3, "recovery_timeout": 60}})
    )
    from hooks import circuit_breaker

    circuit_breaker._config_cache.clear()
    yield
    circuit_breaker._config_cache.clear()


def _failures(target: str) -> int:
    from hooks.circuit_breaker import CircuitBreaker

    return CircuitBreaker("external_api", target).status().failures


# --------------------------------------------------------------------------- the faulty servers


@contextmanager
def smtp_server_with(case: str) -> Iterator[tuple[str, int]]:
    """``(host, port)`` of a mail server that behaves as ``case`` says."""
    if case == "connect refused":
        yield "127.0.0.1", free_port()
        return
    if case == "timeout":
        with SilentServer() as silent:
            yield "127.0.0.1", silent.port
        return
    with SmtpSink() as sink:
        if case == "421 at MAIL FROM":
            sink.mail_reply = "421 4.3.2 shutting down"
        elif case == "451 at DATA":
            sink.data_reply = "451 4.3.0 try again later"
        elif case == "550 for one recipient":
            sink.refused = {RECIPIENTS[1]: "550 5.1.1 no such user"}
        elif case == "550 for every recipient":
            sink.refused = dict.fromkeys(RECIPIENTS, "550 5.1.1 no such user")
        elif case == "disconnect after DATA":
            sink.drop_after_data = True
        yield sink.host, sink.port


@contextmanager
def http_server_with(case: str) -> Iterator[str]:
    """The base URL of an HTTP server (speaking Slack's API too) that behaves as ``case`` says."""
    if case == "connect refused":
        yield f"http://127.0.0.1:{free_port()}"
        return
    if case == "timeout":
        with SilentServer() as silent:
            yield silent.url
        return
    with SlackApiServer() as server:
        server.respond_with(int(case), {"ok": False, "error": f"HTTP {case}"}, times=5)
        yield server.url


# --------------------------------------------------------------------------- the callers


def _smtp_conn(monkeypatch, host: str, port: int) -> None:
    conn = smtp_connection(host, port, from_email="platform@example.com", timeout=1)
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", conn)


def _alert_verdict(db, channel: dict) -> bool:
    """Send one notification through the outbox; True when it failed (or was refused) for good."""
    alert = make_alert(db, "table_case", "SELECT 1", ">", 0, channels=[channel])
    evaluate([alert])
    deliver_pending(settings=TEST_SETTINGS)
    [row] = [r for r in notifications(db) if r["kind"] == "fired"]
    assert row["attempts"] == 1
    if row["status"] == "pending":
        return False
    assert row["status"] in ("failed", "delivered"), row
    return row["status"] == "failed" or "refused" in (row["last_error"] or "")


def _notifier_verdict(caplog, smtp_conn_id: str = "smtp_default", slack_conn_id: str = "no_slack") -> bool:
    ti = SimpleNamespace(dag_id="d", task_id="t", map_index=-1, try_number=1, run_id="r", log_url="")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="notifiers.task_failure"):
        TaskFailureNotifier(slack_conn_id=slack_conn_id, smtp_conn_id=smtp_conn_id, recipients=RECIPIENTS).notify(
            {"ti": ti, "run_id": "r", "exception": RuntimeError("boom")}
        )
    [warning] = [r.getMessage() for r in caplog.records if r.name == "notifiers.task_failure"]
    assert " transient" in warning or " permanent" in warning or "only some recipients" in warning, warning
    return " permanent" in warning or "only some recipients" in warning


def _report_verdict(db) -> bool:
    from include.reports.definitions import parse_request
    from include.reports.errors import DeliveryError
    from include.reports.generation import generate_run
    from include.reports.planning import plan_runs
    from include.reports.run_delivery import deliver_run
    from tests.integration.reports.conftest import insert_report

    insert_report(db, name="table_case", sql="SELECT 1 AS one", recipients=RECIPIENTS)
    (run_id,) = plan_runs(parse_request({"report_name": "table_case"}), dag_run_id="manual__table")
    generate_run(run_id, worker="test/generate")
    with suppress(DeliveryError):
        deliver_run(run_id, worker="test/deliver")
    [delivery] = db.execute("SELECT status, attempts, error FROM analytics_report_deliveries").fetchall()
    status, attempts, error = delivery
    if status == "sent":
        assert "refused" in (error or "")
        return True
    assert status == "failed" and attempts >= 1
    from include.reports.config import ReportSettings

    return attempts >= ReportSettings.from_env().max_attempts  # given up at once: permanent


SMTP_CALLERS: dict[str, Callable] = {
    "alerts": lambda db, caplog: _alert_verdict(db, {"type": "email", "to": RECIPIENTS}),
    "failure notifier": lambda db, caplog: _notifier_verdict(caplog),
    "reports": lambda db, caplog: _report_verdict(db),
}


@pytest.mark.usefixtures("reports_env")
@pytest.mark.parametrize(("case", "permanent", "counts"), SMTP_CASES, ids=[c[0] for c in SMTP_CASES])
def test_smtp_faults_mean_the_same_to_every_caller(db, monkeypatch, caplog, case, permanent, counts):
    verdicts = {}
    for caller, verdict in SMTP_CALLERS.items():
        with smtp_server_with(case) as (host, port):
            _smtp_conn(monkeypatch, host, port)
            verdicts[caller] = (verdict(db, caplog), _failures(f"smtp:{host}:{port}"))
    assert verdicts == dict.fromkeys(SMTP_CALLERS, (permanent, 1 if counts else 0))


def _slack_webhook_conn(monkeypatch, url: str) -> None:
    conn = connection_json(
        conn_type="slackwebhook", host=f"{url}/services", password="T000/B000/XXXX", extra={"timeout": 1}
    )
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", conn)


def _upload_verdict(monkeypatch, url: str, tmp_path) -> bool:
    from delivery.messages import SlackFile, SlackMessage
    from delivery.sending import deliver

    conn = connection_json(conn_type="slack", password="xoxb-test", extra={"base_url": f"{url}/api/", "timeout": 1})
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_REPORTS", conn)
    path = tmp_path / "report.csv"
    path.write_text("a,b\n1,2\n")
    outcome = deliver("slack_reports", SlackMessage(text="report", channel="C0REPORTS", file=SlackFile(path)))
    assert outcome.status in ("permanent", "transient"), outcome
    return outcome.status == "permanent"


def _http_callers(db, caplog, monkeypatch, tmp_path) -> dict[str, Callable[[str], bool]]:
    def alerts_webhook(url: str) -> bool:
        hook = connection_json(conn_type="http", host=url, extra={"signing_secret": "s", "timeout": 1})
        monkeypatch.setenv("AIRFLOW_CONN_ALERT_WEBHOOK", hook)
        return _alert_verdict(db, {"type": "webhook", "endpoint": "/hooks/alerts"})

    def alerts_slack(url: str) -> bool:
        _slack_webhook_conn(monkeypatch, url)
        return _alert_verdict(db, {"type": "slack"})

    def notifier_slack(url: str) -> bool:
        _slack_webhook_conn(monkeypatch, url)
        return _notifier_verdict(caplog, smtp_conn_id="no_smtp", slack_conn_id="slack_alerts")

    return {
        "alerts (webhook)": alerts_webhook,
        "alerts (Slack)": alerts_slack,
        "failure notifier (Slack)": notifier_slack,
        "Slack file upload (reports)": lambda url: _upload_verdict(monkeypatch, url, tmp_path),
    }


@pytest.mark.parametrize(("case", "permanent", "counts"), HTTP_CASES, ids=[c[0] for c in HTTP_CASES])
def test_http_faults_mean_the_same_to_every_caller(db, monkeypatch, caplog, tmp_path, case, permanent, counts):
    from hooks.external_api import http_breaker_target

    verdicts = {}
    for caller, verdict in _http_callers(db, caplog, monkeypatch, tmp_path).items():
        clean_alert_tables(db)
        with http_server_with(case) as url:
            verdicts[caller] = (verdict(url), _failures(http_breaker_target(url)))
    assert verdicts == dict.fromkeys(verdicts, (permanent, 1 if counts else 0))


@pytest.mark.usefixtures("reports_env")
def test_one_breaker_per_mail_server_whoever_sends(db, monkeypatch, caplog):
    """The three callers failing once each on one mail server open its one breaker (threshold 3)."""
    from hooks.circuit_breaker import CircuitBreaker

    with ExitStack() as stack:
        host, port = stack.enter_context(smtp_server_with("421 at MAIL FROM"))
        _smtp_conn(monkeypatch, host, port)
        for verdict in SMTP_CALLERS.values():
            verdict(db, caplog)
            clean_alert_tables(db)
    status = CircuitBreaker("external_api", f"smtp:{host}:{port}").status()
    assert (status.state, status.failures) == ("open", 3)


@pytest.mark.parametrize(
    ("port", "extra", "target"),
    [
        (None, {"disable_ssl": True}, "smtp:mail.example:25"),
        (None, {}, "smtp:mail.example:465"),
        (2525, {}, "smtp:mail.example:2525"),
    ],
)
def test_the_mail_server_target_is_its_host_and_the_port_really_used(monkeypatch, port, extra, target):
    from delivery.email import server_target

    conn = {"conn_type": "smtp", "host": "mail.example", "extra": json.dumps(extra), **({"port": port} if port else {})}
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_EXAMPLE", json.dumps(conn))
    assert server_target("smtp_example") == target
