"""Send one notification to Slack, email or a webhook, through the ``external_api`` breaker of its host.

* **Slack**: through the Slack provider's hooks. A ``slackwebhook`` connection posts to its
  incoming webhook (:class:`SlackWebhookHook`); a ``slack`` (API token) connection posts with
  ``chat.postMessage`` to the channel's ``channel`` (:class:`SlackHook`). Block Kit message.
* **Email**: through the SMTP provider's connection (:class:`hooks.alert_email.AlertEmailHook`),
  ``multipart/alternative`` with text and HTML; the ``Message-ID`` is derived from the
  notification's idempotency key.
* **Webhook**: JSON through :class:`hooks.external_api.ExternalApiHook`, signed with HMAC-SHA256
  over ``"<timestamp>.<body>"`` using the connection's ``signing_secret`` extra; headers
  ``X-Alert-Timestamp``, ``X-Alert-Signature: sha256=<hex>`` and ``Idempotency-Key``.

The SDKs' own retries are turned off: the outbox retries with backoff, one layer only. 5xx, 429,
refused connections and timeouts count against the breaker; a 4xx answer does not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import time
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

from include.alerts.settings import DEFAULT_CONNECTIONS

SIGNATURE_HEADER = "X-Alert-Signature"
TIMESTAMP_HEADER = "X-Alert-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SEND_TIMEOUT = 10


class DeliveryError(RuntimeError):
    """The channel rejected the notification or is misconfigured (the attempt failed)."""


def is_delivery_failure(error: BaseException) -> bool:
    """Whether ``error`` means the receiving service is in trouble (counts against its breaker)."""
    from hooks.external_api import HttpDependencyError, is_http_failure

    if isinstance(error, HttpDependencyError):
        return True
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code < 500  # 4xx: try later; 5xx: the server answered and refused
    if isinstance(error, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError)):
        return True
    if isinstance(error, DeliveryError):
        return False
    if is_http_failure(error):
        return True
    return isinstance(error, (OSError, TimeoutError))


def delivery_breaker(target: str):
    from hooks.circuit_breaker import CircuitBreaker

    return CircuitBreaker("external_api", target, is_failure=is_delivery_failure)


def host_of(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "unknown"
    return f"{host}:{parts.port}" if parts.port else host


def connection_of(channel: Mapping[str, Any]) -> str:
    return channel.get("connection") or DEFAULT_CONNECTIONS[channel["type"]]


# ----------------------------------------------------------------------------- Slack


def send_slack(channel: Mapping[str, Any], payload: Mapping[str, Any]) -> None:
    """Post a Block Kit message (``payload``: ``text`` and ``blocks``) to the channel's Slack connection."""
    from airflow.sdk import BaseHook

    from hooks.external_api import HttpDependencyError

    conn_id = connection_of(channel)
    conn = BaseHook.get_connection(conn_id)
    if conn.conn_type == "slack":
        _send_slack_api(conn_id, channel, payload)
        return
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    from observability.redaction import mask_url

    client = SlackWebhookHook(slack_webhook_conn_id=conn_id, timeout=SEND_TIMEOUT, retry_handlers=[]).get_conn()
    mask_url(client.url)  # the webhook URL is the secret: the task log hides it from here on
    host = host_of(client.url)
    with delivery_breaker(host).guard():
        response = client.send_dict(dict(payload))
        status = response.status_code
        if status >= 500 or status == 429:
            # the webhook URL holds a secret: name only its host
            raise HttpDependencyError("POST", f"Slack webhook at {host}", status, str(response.body))
        if status != 200:
            raise DeliveryError(f"Slack webhook at {host} answered HTTP {status}: {str(response.body)[:200]}")


def _send_slack_api(conn_id: str, channel: Mapping[str, Any], payload: Mapping[str, Any]) -> None:
    from airflow.providers.slack.hooks.slack import SlackHook
    from slack_sdk.errors import SlackApiError

    from hooks.external_api import HttpDependencyError

    target_channel = channel.get("channel")
    if not target_channel:
        raise DeliveryError(f"Slack API connection {conn_id!r} needs a 'channel' in the alert's channel definition")
    hook = SlackHook(slack_conn_id=conn_id, timeout=SEND_TIMEOUT, retry_handlers=[])
    base_url = hook.get_conn().base_url
    with delivery_breaker(host_of(base_url)).guard():
        try:
            hook.call(
                "chat.postMessage",
                json={"channel": target_channel, "text": payload["text"], "blocks": payload["blocks"]},
            )
        except SlackApiError as error:
            status = error.response.status_code if error.response is not None else 0
            if status >= 500 or status == 429:
                raise HttpDependencyError("POST", f"{base_url}chat.postMessage", status, str(error)) from None
            raise DeliveryError(f"Slack API refused the message: {error}") from None


# ----------------------------------------------------------------------------- email


def build_email(
    payload: Mapping[str, Any], to: list[str], idempotency_key: str, headers: Mapping[str, str] | None = None
) -> EmailMessage:
    """A ``multipart/alternative`` message (text first, HTML preferred)."""
    message = EmailMessage()
    message["Subject"] = payload["subject"]
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = f"<{idempotency_key}@alerts.analytics-platform>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(payload["text"])
    message.add_alternative(payload["html"], subtype="html")
    return message


def send_email(
    channel: Mapping[str, Any], payload: Mapping[str, Any], idempotency_key: str, headers: Mapping[str, str]
) -> None:
    """Send the notification's email to the channel's ``to`` through its SMTP connection."""
    from airflow.sdk import BaseHook

    from hooks.alert_email import AlertEmailHook

    conn_id = connection_of(channel)
    to = channel.get("to") or []
    if isinstance(to, str):
        to = [to]
    if not to:
        raise DeliveryError("email channel has no 'to' address")
    conn = BaseHook.get_connection(conn_id)
    message = build_email(payload, list(to), idempotency_key, headers)
    with delivery_breaker(f"smtp:{conn.host}:{conn.port or 25}").guard(), AlertEmailHook(smtp_conn_id=conn_id) as hook:
        hook.send_message(message)


# ----------------------------------------------------------------------------- webhook


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value: ``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str, *, tolerance: float = 300) -> bool:
    """For receivers: the signature is right and the timestamp recent (rejects replays)."""
    try:
        fresh = abs(time.time() - float(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


def send_webhook(channel: Mapping[str, Any], payload: Mapping[str, Any], idempotency_key: str) -> None:
    """POST the signed JSON document to the channel's connection (plus its optional ``endpoint``)."""
    from hooks.external_api import ExternalApiHook

    conn_id = connection_of(channel)
    hook = ExternalApiHook(conn_id, timeout=SEND_TIMEOUT)
    secret = (hook.get_connection(conn_id).extra_dejson or {}).get("signing_secret")
    if not secret:
        raise DeliveryError(
            f"webhook connection {conn_id!r} has no 'signing_secret' extra; alert webhooks are always signed"
        )
    body = json.dumps({**payload["body"], "idempotency_key": idempotency_key}, sort_keys=True, default=str).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        IDEMPOTENCY_HEADER: idempotency_key,
        "User-Agent": "analytics-platform-alerts/1",
    }
    hook.post(channel.get("endpoint", ""), data=body, headers=headers)


# ----------------------------------------------------------------------------- dispatch


def send_notification(row: Mapping[str, Any]) -> None:
    """Send one claimed outbox row (``channel_type``, ``channel``, ``payload``, ``idempotency_key``)."""
    channel, payload, key = row["channel"], row["payload"], str(row["idempotency_key"])
    kind = row["channel_type"]
    if kind == "slack":
        send_slack(channel, payload)
    elif kind == "email":
        headers = {
            "X-Alert-Id": str(row["alert_id"]),
            "X-Alert-Event": str(row["kind"]),
            IDEMPOTENCY_HEADER: key,
        }
        send_email(channel, payload, key, headers)
    elif kind == "webhook":
        send_webhook(channel, payload, key)
    else:
        raise DeliveryError(f"unknown channel type {kind!r}")


Sender = Callable[[Mapping[str, Any]], None]
