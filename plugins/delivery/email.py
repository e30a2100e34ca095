"""Email through the SMTP provider's hook: text and HTML, attachments, inline images; sent once.

The message is ``multipart/alternative`` when it has both text and HTML (HTML preferred); inline
images make the HTML part ``multipart/related`` (the HTML refers to each as ``cid:<id>``);
attachments make the whole ``multipart/mixed``. Headers are folded as RFC 5322 asks
(``email.policy.SMTP``), so a ``To`` of hundreds of recipients is still a valid header.

The send goes through the ``external_api`` breaker of the mail server, ``smtp:<host>:<port>``
with the port the hook really connects to (:attr:`hooks.smtp.SmtpMessageHook.breaker_target`),
whoever the caller.
"""

from __future__ import annotations

import mimetypes
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from pathlib import Path

from delivery.connections import require_connection
from delivery.messages import Email, Receipt
from hooks.failures import MisconfiguredChannel


def build_mime(email: Email, sender: str) -> EmailMessage:
    """The MIME message of ``email`` from ``sender``."""
    if not (email.text or email.html):
        raise MisconfiguredChannel(f"email {email.subject!r} has neither text nor HTML")
    message = EmailMessage(policy=SMTP)
    message["Subject"] = email.subject
    message["From"] = sender
    message["To"] = ", ".join(email.to)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = email.message_id or make_msgid(domain=sender.rsplit("@", 1)[-1])
    for name, value in email.headers.items():
        message[name] = value
    if email.text:
        message.set_content(email.text)
        if email.html:
            message.add_alternative(email.html, subtype="html")
    else:
        message.set_content(email.html or "", subtype="html")
    if email.inline_images:
        html_part = message.get_body(preferencelist=("html",))
        if html_part is None:
            raise MisconfiguredChannel(f"email {email.subject!r} has inline images but no HTML to show them")
        for image in email.inline_images:
            html_part.add_related(
                image.data,
                maintype="image",
                subtype=image.subtype,
                cid=f"<{image.cid}>",
                filename=image.filename,
                disposition="inline",  # shown in the HTML, not listed as an attachment
            )
    for attachment in email.attachments:
        maintype, subtype = (attachment.content_type or "application/octet-stream").split("/", 1)
        message.add_attachment(
            Path(attachment.path).read_bytes(), maintype=maintype, subtype=subtype, filename=attachment.name
        )
    return message


def guess_content_type(path: Path | str) -> str:
    """The MIME type of a file from its name (``application/octet-stream`` when unknown)."""
    return mimetypes.guess_type(str(path))[0] or "application/octet-stream"


def send_email(conn_id: str, email: Email) -> Receipt:
    """Send ``email`` through SMTP connection ``conn_id`` once; the receipt names refused recipients."""
    from hooks.circuit_breaker import CircuitBreaker
    from hooks.failures import counts_against_breaker
    from hooks.smtp import SmtpMessageHook

    if not email.to:
        raise MisconfiguredChannel(f"email {email.subject!r} has no recipient")
    hook = SmtpMessageHook(smtp_conn_id=conn_id)
    hook.smtp_connection = require_connection(conn_id, "SMTP")
    sender = email.from_email or hook.from_email
    if not sender:
        raise MisconfiguredChannel(f"SMTP connection {conn_id!r} has no 'from_email' extra and the email no sender")
    message = build_mime(email, sender)
    breaker = CircuitBreaker("external_api", hook.breaker_target, is_failure=counts_against_breaker)
    with breaker.guard(), hook:
        refused = hook.send_message(message)
    return Receipt(
        reference=str(message["Message-ID"]),
        refused={address: f"{code} {_text(reply)}" for address, (code, reply) in refused.items()},
    )


def server_target(conn_id: str) -> str:
    """``smtp:<host>:<port>`` of the mail server of connection ``conn_id`` (its breaker's target)."""
    from hooks.smtp import SmtpMessageHook

    hook = SmtpMessageHook(smtp_conn_id=conn_id)
    hook.smtp_connection = require_connection(conn_id, "SMTP")
    return hook.breaker_target


def check_server(conn_id: str) -> None:
    """Connect to the mail server of ``conn_id`` (STARTTLS and login as configured), ``NOOP``, close; send nothing."""
    from hooks.smtp import SmtpMessageHook

    hook = SmtpMessageHook(smtp_conn_id=conn_id)
    hook.smtp_connection = require_connection(conn_id, "SMTP")
    with hook:
        ok, message = hook.test_connection()
    if not ok:
        raise ConnectionError(message)


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
