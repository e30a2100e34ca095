"""An outbox row as a message of the delivery layer (:mod:`delivery`), sent through the channel's connection.

* **Slack** (connection ``slack_alerts`` unless the channel names one): the Block Kit payload;
  an API-token connection posts to the channel's ``channel`` (else the connection's extra).
* **Email** (``smtp_default``): text and HTML to the channel's ``to``; the ``Message-ID`` is derived
  from the notification's idempotency key; headers ``X-Alert-Id``, ``X-Alert-Event``,
  ``Idempotency-Key``.
* **Webhook** (``alert_webhook``): the JSON document, signed, with the idempotency key, POSTed to
  the channel's ``endpoint`` under the connection's base URL.

How each is sent, which failures are permanent and which breaker they count against is the
delivery layer's (:func:`delivery.sending.deliver`), the same for every caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from include.alerts.settings import DEFAULT_CONNECTIONS

IDEMPOTENCY_HEADER = "Idempotency-Key"


class UnknownChannelType(ValueError):
    """An outbox row of a channel type the platform does not have."""


def connection_of(channel: Mapping[str, Any]) -> str:
    """The Airflow connection a channel sends through (its own, else the default of its type)."""
    return channel.get("connection") or DEFAULT_CONNECTIONS[channel["type"]]


def message_for(row: Mapping[str, Any]):
    """The delivery-layer message of an outbox row (``channel_type``, ``channel``, ``payload``, ``idempotency_key``)."""
    from delivery.messages import Email, SlackMessage, WebhookPost

    channel, payload, key = row["channel"], row["payload"], str(row["idempotency_key"])
    kind = row["channel_type"]
    if kind == "slack":
        return SlackMessage(
            text=payload["text"], blocks=tuple(payload.get("blocks") or ()), channel=channel.get("channel")
        )
    if kind == "email":
        to = channel.get("to") or []
        return Email(
            to=tuple([to] if isinstance(to, str) else to),
            subject=payload["subject"],
            text=payload.get("text"),
            html=payload.get("html"),
            message_id=f"<{key}@alerts.analytics-platform>",
            headers={
                **({"X-Alert-Id": str(row["alert_id"])} if row.get("alert_id") is not None else {}),
                "X-Alert-Event": str(row["kind"]),
                IDEMPOTENCY_HEADER: key,
            },
        )
    if kind == "webhook":
        return WebhookPost(
            body=payload["body"],
            idempotency_key=key,
            endpoint=channel.get("endpoint", ""),
            user_agent="analytics-platform-alerts/1",
        )
    raise UnknownChannelType(f"unknown channel type {kind!r}")


def send_notification(row: Mapping[str, Any]):
    """Send one claimed outbox row once; the :class:`delivery.sending.Outcome` says what became of it."""
    from delivery.sending import Outcome, deliver

    try:
        message = message_for(row)
    except UnknownChannelType as error:
        return Outcome(row["channel_type"], "permanent", str(error))
    return deliver(connection_of(row["channel"]), message)
