"""What can be delivered: an email, a Slack message (optionally with a file), a signed webhook POST.

Plain values, built by the callers (alerts, reports, the task-failure notifier) and handed to
:func:`delivery.deliver` with the Airflow connection to send them through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Attachment:
    """A file attached to an email: read from ``path`` when it is sent."""

    path: Path
    filename: str | None = None
    content_type: str = "application/octet-stream"

    @property
    def name(self) -> str:
        return self.filename or Path(self.path).name


@dataclass(frozen=True)
class InlineImage:
    """An image shown in an email's HTML, which refers to it as ``<img src="cid:{cid}">``."""

    cid: str
    data: bytes
    subtype: str = "png"
    filename: str | None = None


@dataclass(frozen=True)
class Email:
    """A message to ``to``: plain text and/or HTML (both: ``multipart/alternative``), attachments, inline images.

    ``message_id`` is fixed by the caller (one per notification or delivery), so a mail system can
    recognise a message it has seen; ``headers`` are added as they are.
    """

    to: tuple[str, ...]
    subject: str
    text: str | None = None
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    inline_images: tuple[InlineImage, ...] = ()
    message_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    #: sender; default: the connection's ``from_email`` extra
    from_email: str | None = None


@dataclass(frozen=True)
class SlackFile:
    """A file to share in Slack: uploaded (``files_upload_v2``) on an API-token connection.

    An incoming-webhook connection cannot upload: it posts the message with ``link`` instead
    (a URL of the file in object storage), or the send is refused when there is none.
    """

    path: Path
    filename: str | None = None
    title: str | None = None
    link: str | None = None

    @property
    def name(self) -> str:
        return self.filename or Path(self.path).name


@dataclass(frozen=True)
class SlackMessage:
    """A Block Kit message (``text`` is the notification fallback), optionally sharing a file.

    ``channel`` is required on an API-token (``slack``) connection, where its default is the
    connection's ``channel`` extra; an incoming webhook posts where it was installed.
    """

    text: str
    blocks: tuple[dict[str, Any], ...] | list[dict[str, Any]] = ()
    channel: str | None = None
    file: SlackFile | None = None


@dataclass(frozen=True)
class WebhookPost:
    """A JSON document POSTed to a path under the connection's base URL, signed, with an idempotency key.

    The receiver drops a repeat by ``Idempotency-Key``: a webhook is the one channel that may be
    sent again when its outcome is unknown.
    """

    body: Mapping[str, Any]
    idempotency_key: str
    endpoint: str = ""
    user_agent: str = "analytics-platform/1"


Message = Email | SlackMessage | WebhookPost


@dataclass(frozen=True)
class Receipt:
    """What the receiving server said to a message it took: its reference, and recipients it refused."""

    #: the email's Message-ID, the Slack message's ``ts`` or file id, the webhook's HTTP status
    reference: str | None = None
    #: email: recipients the server refused (the others got the message) and its reply to each
    refused: Mapping[str, str] = field(default_factory=dict)
