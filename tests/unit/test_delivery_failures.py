"""The classifier of every protocol, on the errors the libraries raise (with real servers: the integration test)."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest
import requests
from airflow.sdk.exceptions import AirflowException, AirflowNotFoundException

from hooks.endpoints import EndpointNotAllowed
from hooks.failures import ConnectionNotDefined, HttpDependencyError, HttpRejected, classify, raise_for_http_status


def _slack_error(status: int, error: str):
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web import SlackResponse

    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="x",
        req_args={},
        data={"ok": False, "error": error},
        headers={},
        status_code=status,
    )
    return SlackApiError("failed", response)


def _wrapped(inner: BaseException) -> AirflowException:
    try:
        try:
            raise inner
        except type(inner):
            raise AirflowException("Unable to connect to smtp server")  # noqa: B904 - as the SMTP hook does
    except AirflowException as outer:
        return outer


@pytest.mark.parametrize(
    ("error", "permanent", "counts"),
    [
        # SMTP
        (ConnectionRefusedError(111, "Connection refused"), False, True),
        (smtplib.SMTPConnectError(421, b"too busy"), False, True),
        (smtplib.SMTPSenderRefused(421, b"shutting down", "a@x"), False, True),
        (smtplib.SMTPDataError(451, b"try again later"), False, True),
        (smtplib.SMTPRecipientsRefused({"a@x": (550, b"no such user")}), True, False),
        (smtplib.SMTPRecipientsRefused({"a@x": (550, b"no"), "b@x": (451, b"later")}), False, True),
        (smtplib.SMTPDataError(554, b"rejected"), True, False),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), True, False),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), False, True),
        (TimeoutError("timed out"), False, True),
        (_wrapped(smtplib.SMTPServerDisconnected("gone")), False, True),
        # HTTP
        (requests.ConnectionError("refused"), False, True),
        (requests.Timeout("read timed out"), False, True),
        (HttpDependencyError("POST", "x", 429, ""), False, True),
        (HttpDependencyError("POST", "x", 500, ""), False, True),
        (HttpDependencyError("POST", "x", 502, ""), False, True),
        (HttpRejected("POST", "x", 400, ""), True, False),
        (HttpRejected("POST", "x", 404, ""), True, False),
        # Slack Web API (an error named on HTTP 200, or a status)
        (_slack_error(200, "channel_not_found"), True, False),
        (_slack_error(200, "invalid_auth"), True, False),
        (_slack_error(200, "ratelimited"), False, True),
        (_slack_error(429, "ratelimited"), False, True),
        (_slack_error(503, "service_unavailable"), False, True),
        # any protocol
        (ConnectionNotDefined("nope"), True, False),
        (AirflowNotFoundException("The conn_id `nope` isn't defined"), True, False),
        (EndpointNotAllowed("leaves the base URL"), True, False),
        (ValueError("something unexpected"), False, False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_the_classifier_of_each_protocol(error, permanent, counts):
    failure = classify(error)
    assert (failure.permanent, failure.counts) == (permanent, counts)
    assert type(error).__name__ in failure.reason


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, None),
        (204, None),
        (301, HttpRejected),
        (404, HttpRejected),
        (429, HttpDependencyError),
        (502, HttpDependencyError),
    ],
)
def test_http_answers(status, expected):
    if expected is None:
        raise_for_http_status("POST", "x", status, "")
    else:
        with pytest.raises(expected):
            raise_for_http_status("POST", "x", status, "")


def test_a_reason_never_shows_a_secret_of_a_url():
    failure = classify(
        requests.ConnectionError("Max retries exceeded with url: https://hooks.example/x?token=s3cr3t-value")
    )
    assert "s3cr3t-value" not in failure.reason and "token=***" in failure.reason


def test_airflow_loads_only_the_plugin_module_from_plugins():
    """Airflow loads every .py file below plugins/ as a top-level module named after the file: delivery/email.py
    would replace the standard library's email. .airflowignore keeps the packages out of its plugin loading."""
    from airflow._shared.module_loading import find_path_from_directory

    plugins = Path(__file__).resolve().parents[2] / "plugins"
    loaded = sorted(
        Path(p).relative_to(plugins).as_posix()
        for p in find_path_from_directory(str(plugins), ".airflowignore", "glob")
    )
    assert [p for p in loaded if p.endswith(".py")] == ["platform_ui.py"]
    packages = {p.parent.name for p in plugins.glob("*/__init__.py")} | {
        p.name for p in plugins.iterdir() if p.is_dir() and any(p.glob("*.py"))
    }
    ignored = {
        line.strip().rstrip("/")
        for line in (plugins / ".airflowignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert packages <= ignored, f"add {sorted(packages - ignored)} to plugins/.airflowignore"
