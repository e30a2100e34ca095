"""What a failed send means: one classifier per protocol, the same answer for every caller.

Every send (alerts, reports, the task-failure notifier, the analytics API) is judged here. A
failure is **transient** (try again later, with backoff) or **permanent** (trying again cannot
help: fail at once, tell the owner once); and it **counts** against the breaker of the server
only when the server itself is in trouble.

======================  =============================================  =============================================
protocol                transient, counts against the server's breaker  permanent, does not count
======================  =============================================  =============================================
SMTP                    refused connection, timeout, dropped            every recipient refused (550 ...), any other
                        connection (also mid-DATA), any 4xx reply       5xx reply (554 at DATA, 535 at login)
                        (421, 451, a greylisting 450 ...)
HTTP (webhooks, Slack)  refused connection, timeout, 429, 5xx           any other 4xx (400, 404 ...), a redirect
Slack Web API           ``ratelimited``, ``internal_error``,            ``channel_not_found``, ``not_in_channel``,
                        ``service_unavailable``, ``fatal_error``        ``is_archived``, ``invalid_auth`` and every
                                                                        other error Slack names
any                     -                                               a connection that is not defined, a target
                                                                        not allowed, a channel that lacks something
======================  =============================================  =============================================

Some recipients refused while others accepted the message is not an exception of smtplib: the
message went out; the email layer reports the refused ones (permanent for them, not counted).
An error no classifier knows is transient and does not count: it is tried again with backoff but
never opens a breaker. Errors wrapped by a provider (``AirflowException`` raised while handling
the real one) are judged by the error they wrap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from observability.redaction import redact

#: Slack Web API errors that mean Slack is in trouble; every other named error is the request's own.
SLACK_TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "service_unavailable", "fatal_error", "request_timeout"}
)
_STATUS_IN_TEXT = re.compile(r"\bstatus(?:[ _]code)?[:=]\s*(\d{3})\b", re.IGNORECASE)


@dataclass(frozen=True)
class Failure:
    """The verdict on one failed send."""

    permanent: bool
    #: counts against the breaker of the server (the server, not the request, is in trouble)
    counts: bool
    #: what went wrong, secrets masked (fit for logs, error columns and the breaker page)
    reason: str

    @property
    def kind(self) -> str:
        return "permanent" if self.permanent else "transient"


class PermanentDeliveryError(Exception):
    """A send that trying again cannot fix: configuration, a refused target, a rejected request."""


class ConnectionNotDefined(PermanentDeliveryError):
    """The Airflow connection a channel names does not exist."""

    def __init__(self, conn_id: str, purpose: str = "") -> None:
        what = f" ({purpose})" if purpose else ""
        super().__init__(f"connection {conn_id!r}{what} is not defined in Airflow; create it or fix the channel")
        self.conn_id = conn_id


class MisconfiguredChannel(PermanentDeliveryError):
    """A channel or its connection lacks what the send needs (an address, a Slack channel, a signing secret)."""


class HttpRejected(PermanentDeliveryError):
    """The server answered 4xx (not 429) or a redirect: it works and refuses this request."""

    def __init__(self, method: str, where: str, status_code: int, body: str) -> None:
        super().__init__(f"{method} {where} answered HTTP {status_code}: {body[:200]}")
        self.status_code = status_code


class HttpDependencyError(RuntimeError):
    """The server answered with a status that means it is in trouble (5xx or 429)."""

    def __init__(self, method: str, where: str, status_code: int, body: str) -> None:
        super().__init__(f"{method} {where} answered HTTP {status_code}: {body[:200]}")
        self.status_code = status_code


def raise_for_http_status(method: str, where: str, status_code: int, body: str) -> None:
    """Raise what an HTTP answer means for a send: nothing for 2xx, else the classified error."""
    if 200 <= status_code < 300:
        return
    if status_code >= 500 or status_code == 429:
        raise HttpDependencyError(method, where, status_code, body)
    raise HttpRejected(method, where, status_code, body)


def classify(error: BaseException) -> Failure:
    """The verdict on ``error`` (see the module's table)."""
    verdict = _judge(error)
    if verdict is None:  # unknown: perhaps a provider's wrapper around a known error
        cause = error.__cause__ or error.__context__
        if cause is not None and cause is not error:
            inner = classify(cause)
            return Failure(inner.permanent, inner.counts, _reason(error, inner.reason))
        verdict = (False, False)
    permanent, counts = verdict
    return Failure(permanent, counts, _reason(error))


def counts_against_breaker(error: BaseException) -> bool:
    """The ``is_failure`` of every delivery breaker."""
    return classify(error).counts


def _reason(error: BaseException, inner: str | None = None) -> str:
    text = f"{type(error).__name__}: {error}"
    if inner and inner not in text:
        text = f"{text} ({inner})"
    return redact(text)[:1000]


def _judge(error: BaseException) -> tuple[bool, bool] | None:
    """``(permanent, counts)``, or ``None`` when no classifier knows ``error``."""
    for judge in (_judge_platform, _judge_smtp, _judge_slack, _judge_http, _judge_network):
        verdict = judge(error)
        if verdict is not None:
            return verdict
    return None


def _judge_platform(error: BaseException) -> tuple[bool, bool] | None:
    from airflow.sdk.exceptions import AirflowNotFoundException

    from hooks.endpoints import EndpointNotAllowed

    if isinstance(error, (PermanentDeliveryError, EndpointNotAllowed, AirflowNotFoundException)):
        return True, False
    if isinstance(error, HttpDependencyError):
        return False, True
    return None


def _judge_smtp(error: BaseException) -> tuple[bool, bool] | None:
    """SMTP: a 4xx reply is temporary trouble of the server; a 5xx reply is a refusal by a server that works."""
    import smtplib

    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        if codes and all(code >= 500 for code in codes):
            return True, False
        return False, True
    if isinstance(error, smtplib.SMTPResponseException):
        return (error.smtp_code >= 500, error.smtp_code < 500)
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return True, False  # e.g. STARTTLS asked of a server without it: the connection's settings
    if isinstance(error, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError)):
        return False, True
    return None


def _judge_slack(error: BaseException) -> tuple[bool, bool] | None:
    """Slack's SDK: an HTTP status, or ``ok: false`` with a named error on HTTP 200."""
    try:
        from slack_sdk.errors import SlackApiError, SlackRequestError
    except ImportError:  # pragma: no cover - the Slack provider brings the SDK
        return None
    if isinstance(error, SlackApiError):
        response = error.response
        status = getattr(response, "status_code", 0) or 0
        if status >= 500 or status == 429:
            return False, True
        code = ""
        if response is not None:
            try:
                code = str(response.get("error") or "")
            except Exception:  # a response without a JSON body
                code = ""
        if code in SLACK_TRANSIENT_ERRORS:
            return False, True
        return True, False
    if isinstance(error, SlackRequestError):
        # the SDK's own check of a file upload names the status only in its text
        match = _STATUS_IN_TEXT.search(str(error))
        if match:
            status = int(match.group(1))
            return (status < 500 and status != 429, status >= 500 or status == 429)
        return True, False  # the request itself is wrong (size, arguments)
    return None


def _judge_http(error: BaseException) -> tuple[bool, bool] | None:
    import requests

    if isinstance(error, requests.HTTPError):
        status = error.response.status_code if error.response is not None else 0
        if status >= 500 or status == 429 or status == 0:
            return False, True
        return True, False
    if isinstance(error, (requests.ConnectionError, requests.Timeout)):
        return False, True
    return None


def _judge_network(error: BaseException) -> tuple[bool, bool] | None:
    """Refused or dropped connections and timeouts (``urllib``'s ``URLError`` is an ``OSError``)."""
    if isinstance(error, (ConnectionError, TimeoutError, OSError)):
        return False, True
    return None
