"""Signed webhooks through :class:`hooks.external_api.ExternalApiHook` (the HTTP provider's ``HttpHook``).

The JSON body (with its ``idempotency_key``) is signed with HMAC-SHA256 over
``"<timestamp>.<body>"`` using the connection's ``signing_secret`` extra (required: webhooks are
always signed; the secret itself is never sent). Headers: ``X-Alert-Timestamp``,
``X-Alert-Signature: sha256=<hex>``, ``Idempotency-Key``. The endpoint is a path under the
connection's base URL, checked at send time; the breaker is the ``external_api`` breaker of the
server.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from delivery.connections import require_connection
from delivery.messages import Receipt, WebhookPost
from hooks.failures import MisconfiguredChannel

SIGNATURE_HEADER = "X-Alert-Signature"
TIMESTAMP_HEADER = "X-Alert-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Seconds to wait for the receiver to connect and answer, unless the connection's ``timeout`` extra says otherwise.
SEND_TIMEOUT = 10


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


def send_webhook(conn_id: str, post: WebhookPost) -> Receipt:
    """POST the signed JSON document of ``post`` to its endpoint under connection ``conn_id``."""
    from hooks.external_api import ExternalApiHook

    conn = require_connection(conn_id, "webhook")
    secret = (conn.extra_dejson or {}).get("signing_secret")
    if not secret:
        raise MisconfiguredChannel(
            f"webhook connection {conn_id!r} has no 'signing_secret' extra; webhooks are always signed"
        )
    body = json.dumps({**post.body, "idempotency_key": post.idempotency_key}, sort_keys=True, default=str).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        IDEMPOTENCY_HEADER: post.idempotency_key,
        "User-Agent": post.user_agent,
    }
    response = ExternalApiHook(conn_id, timeout=SEND_TIMEOUT).post(post.endpoint, data=body, headers=headers)
    return Receipt(reference=f"HTTP {response.status_code}")
