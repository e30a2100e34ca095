"""The one place a message is sent: :func:`deliver` returns what happened, it never guesses or raises.

Every caller (alerts, reports, the task-failure notifier) hands a message and a connection id to
:func:`deliver` and gets an :class:`Outcome`:

* ``delivered``: the server took it (an email may name ``refused`` recipients: the others got it;
  the refused ones are a permanent problem for the owner, and the message is never sent again);
* ``permanent``: trying again cannot help (a connection that is not defined, every recipient
  refused, a 4xx answer, a channel that lacks something): fail at once, tell the owner once;
* ``transient``: try again later, with backoff;
* ``deferred``: not attempted, the server's breaker is open (``retry_after`` seconds left).

Which errors are which, and which count against the server's breaker, is decided by one
classifier per protocol (:mod:`hooks.failures`), the same for every caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from delivery.email import send_email
from delivery.messages import Email, Message, Receipt, SlackMessage, WebhookPost
from delivery.slack import send_slack
from delivery.webhook import send_webhook

log = logging.getLogger(__name__)

_SENDERS: dict[type, tuple[str, Callable[[str, Message], Receipt]]] = {
    Email: ("email", send_email),  # type: ignore[dict-item]
    SlackMessage: ("slack", send_slack),  # type: ignore[dict-item]
    WebhookPost: ("webhook", send_webhook),  # type: ignore[dict-item]
}
#: Channels whose receiver drops a repeat (by its idempotency key): the only ones sent again when
#: the outcome of a send is unknown. Email and Slack have no such key: sending again could duplicate.
RESEND_WHEN_UNKNOWN = frozenset({"webhook", "object_storage"})


@dataclass(frozen=True)
class Outcome:
    """What became of one send."""

    channel: str
    #: delivered, permanent, transient or deferred
    status: str
    #: the error (secrets masked), or why the send was not attempted
    reason: str | None = None
    #: whether the failure counted against the server's breaker
    counted: bool = False
    #: the email's Message-ID, the Slack message's ts or file id, the webhook's HTTP status
    reference: str | None = None
    #: email recipients the server refused while it took the message for the others
    refused: Mapping[str, str] = field(default_factory=dict)
    #: deferred: seconds until the breaker may let a trial through
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status == "delivered"

    @property
    def problem(self) -> str | None:
        """What the owner must be told, once: a permanent failure, or recipients refused for good."""
        if self.status == "permanent":
            return self.reason
        if self.refused:
            return "refused by the mail server (the other recipients got it): " + "; ".join(
                f"{address}: {reply}" for address, reply in self.refused.items()
            )
        return None

    def describe(self) -> str:
        parts = [f"{self.channel} {self.status}"]
        if self.reference:
            parts.append(self.reference)
        if self.problem or self.reason:
            parts.append(self.problem or self.reason or "")
        return ": ".join(parts)


def channel_of(message: Message) -> str:
    """``email``, ``slack`` or ``webhook``."""
    return _SENDERS[type(message)][0]


def deliver(conn_id: str, message: Message) -> Outcome:
    """Send ``message`` once through connection ``conn_id`` and say what became of it."""
    channel, send = _SENDERS[type(message)]
    try:
        receipt = send(conn_id, message)
    except Exception as error:
        failed = outcome_of(channel, error)
        log.warning("%s through %r: %s failure: %s", channel, conn_id, failed.status, failed.reason)
        return failed
    outcome = Outcome(channel, "delivered", reference=receipt.reference, refused=dict(receipt.refused))
    if outcome.refused:
        log.warning("%s through %r: %s", channel, conn_id, outcome.problem)
    return outcome


def outcome_of(channel: str, error: BaseException) -> Outcome:
    """What a send of ``channel`` that raised ``error`` came to: deferred (open breaker), or the classifier's verdict.

    Also for what a caller sends itself (a report's copy to object storage): one answer everywhere.
    """
    from hooks.circuit_breaker import CircuitOpenError
    from hooks.failures import classify

    if isinstance(error, CircuitOpenError):
        return Outcome(channel, "deferred", str(error), retry_after=float(error.retry_after))
    failure = classify(error)
    return Outcome(channel, failure.kind, failure.reason, counted=failure.counts)
