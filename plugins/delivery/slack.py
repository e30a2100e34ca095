"""Slack through the Slack provider's hooks: incoming webhooks and API tokens, Block Kit, file uploads.

* An **incoming-webhook** connection (``slackwebhook``: the webhook token ``T…/B…/…`` or the full
  URL in the password) posts with :class:`SlackWebhookHook`. It cannot upload: a message sharing a
  file posts a link to it instead (the file's ``link``), and is refused without one.
* An **API-token** connection (``slack``: the bot token in the password, extras ``base_url``,
  ``timeout``, ``channel``) posts with ``chat.postMessage`` through :class:`SlackHook`, and shares
  a file with ``files_upload_v2`` (``files.getUploadURLExternal``, the upload, then
  ``files.completeUploadExternal`` with the message's text as the file's comment).

The SDK's own retries are off (``retry_handlers=[]``): retries belong to the caller, with
backoff. Each send goes through the ``external_api`` breaker of the Slack server
(``host:port`` of the webhook URL or the API's base URL); the webhook URL is a secret and is
masked in the task log and never named in errors.
"""

from __future__ import annotations

from typing import Any

from delivery.connections import require_connection
from delivery.messages import Receipt, SlackMessage
from hooks.failures import MisconfiguredChannel, PermanentDeliveryError, raise_for_http_status

#: Seconds to wait for Slack to connect and answer, unless the connection's ``timeout`` extra says otherwise.
SEND_TIMEOUT = 10


def send_slack(conn_id: str, message: SlackMessage) -> Receipt:
    """Post ``message`` through Slack connection ``conn_id`` (webhook or API token)."""
    conn = require_connection(conn_id, "Slack")
    timeout = int((conn.extra_dejson or {}).get("timeout") or SEND_TIMEOUT)
    if conn.conn_type == "slack":
        return _send_with_token(conn_id, conn, message, timeout)
    return _send_to_webhook(conn_id, message, timeout)


def _breaker(url: str):
    from hooks.circuit_breaker import CircuitBreaker
    from hooks.external_api import http_breaker_target
    from hooks.failures import counts_against_breaker

    return CircuitBreaker("external_api", http_breaker_target(url), is_failure=counts_against_breaker)


def _send_to_webhook(conn_id: str, message: SlackMessage, timeout: int) -> Receipt:
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    from hooks.external_api import http_breaker_target
    from observability.redaction import mask_url

    hook = SlackWebhookHook(slack_webhook_conn_id=conn_id, timeout=timeout, retry_handlers=[])
    client = hook.get_conn()
    mask_url(client.url)  # the webhook URL is the secret: the task log hides it from here on
    where = f"the Slack webhook at {http_breaker_target(client.url)}"
    body: dict[str, Any] = {"text": message.text}
    blocks = list(message.blocks)
    if message.file is not None:
        if not message.file.link:
            raise MisconfiguredChannel(
                f"Slack connection {conn_id!r} is an incoming webhook, which cannot upload files, and "
                f"{message.file.name!r} has no link to post instead"
            )
        link = f"<{message.file.link}|{_escape(message.file.title or message.file.name)}>"
        body["text"] = f"{message.text}\n{link}"
        if blocks:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f":page_facing_up: {link}"}})
    if blocks:
        body["blocks"] = blocks
    with _breaker(client.url).guard():
        response = client.send_dict(body)
        raise_for_http_status("POST", where, response.status_code, str(response.body))
    return Receipt()


def _send_with_token(conn_id: str, conn: Any, message: SlackMessage, timeout: int) -> Receipt:
    from airflow.providers.slack.hooks.slack import SlackHook

    channel = message.channel or (conn.extra_dejson or {}).get("channel")
    if not channel:
        raise MisconfiguredChannel(
            f"Slack API connection {conn_id!r} needs a channel: name one on the channel definition "
            "or in the connection's 'channel' extra"
        )
    hook = SlackHook(slack_conn_id=conn_id, timeout=timeout, retry_handlers=[])
    client = hook.get_conn()
    with _breaker(client.base_url).guard():
        if message.file is None:
            response = hook.call(
                "chat.postMessage", json={"channel": channel, "text": message.text, "blocks": list(message.blocks)}
            )
            return Receipt(reference=response.get("ts"))
        upload = {"file": str(message.file.path), "filename": message.file.name, "title": message.file.title}
        try:
            response = hook.send_file_v2(channel_id=channel, file_uploads=upload, initial_comment=message.text)
        except LookupError as unknown:  # the provider could not turn a '#name' into a channel id
            raise PermanentDeliveryError(f"Slack channel {channel!r}: {unknown}") from None
        return Receipt(reference=(response.get("file") or {}).get("id"))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "-")
