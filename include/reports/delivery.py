"""Deliver a generated report: email through the SMTP connection, copies to object storage.

Email goes through the SMTP provider's hook behind the ``external_api`` circuit breaker of the
mail server. A file above the attachment limit is not attached: the email links to the archived
copy (a signed URL on object stores that support it).
"""

from __future__ import annotations

import html
import smtplib
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath


def is_smtp_failure(error: BaseException) -> bool:
    """Whether an SMTP error counts against the mail server's breaker.

    Connection problems, timeouts and temporary (4xx) answers count; a permanent refusal (5xx, e.g.
    an unknown recipient) means the server works and does not.
    """
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in error.recipients.values())
    return isinstance(error, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError, socket.timeout))


@dataclass(frozen=True)
class ReportEmail:
    run_id: int
    delivery_id: int
    report_name: str
    slot_text: str
    recipients: tuple[str, ...]
    subject: str
    file_name: str
    rows: int
    bytes: int
    attachment: str | None  # local path of the file to attach
    link: str | None  # link to the file when it is not attached
    link_expiry_text: str | None = None
    #: why it went out without fresh data (its data wait limit passed), shown at the top
    note: str | None = None

    def message_id(self, domain: str) -> str:
        """A Message-ID fixed per delivery, so a mail system can recognise a resent message."""
        return f"<report-run-{self.run_id}.delivery-{self.delivery_id}@{domain}>"

    def html_body(self) -> str:
        name = html.escape(self.report_name)
        lines = [f"<p><b>Note:</b> {html.escape(self.note)}</p>"] if self.note else []
        lines.append(
            f"<p>Report <b>{name}</b> for {html.escape(self.slot_text)}: "
            f"{self.rows:,} rows, {_human_size(self.bytes)}.</p>",
        )
        if self.attachment:
            lines.append(f"<p>The file <code>{html.escape(self.file_name)}</code> is attached.</p>")
        else:
            expiry = f" (the link is valid until {html.escape(self.link_expiry_text)})" if self.link_expiry_text else ""
            lines.append(
                f"<p>The file is larger than the attachment limit. Download "
                f'<a href="{html.escape(self.link or "", quote=True)}">{html.escape(self.file_name)}</a>{expiry}.</p>'
            )
        lines.append(f"<p style='color:#888'>analytics platform, report run {self.run_id}</p>")
        return "\n".join(lines)


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    value = size / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def send_report_email(email: ReportEmail, *, smtp_conn_id: str) -> str:
    """Send ``email`` through the SMTP connection and the mail server's breaker; return its Message-ID.

    The message is built here (policy ``email.policy.SMTP``: long headers such as a ``To`` of many
    recipients are folded, as RFC 5322 requires) and sent once: retries are the run's, not the hook's.
    """
    from email.message import EmailMessage
    from email.policy import SMTP
    from email.utils import formatdate
    from pathlib import Path

    from airflow.providers.smtp.hooks.smtp import SmtpHook

    from hooks.alert_email import AlertEmailHook
    from hooks.circuit_breaker import CircuitBreaker

    conn = SmtpHook.get_connection(smtp_conn_id)
    target = f"smtp:{conn.host}:{conn.port}" if conn.port else f"smtp:{conn.host}"
    from_email = (conn.extra_dejson or {}).get("from_email") or "reports@analytics-platform.local"
    domain = from_email.rsplit("@", 1)[-1]
    message_id = email.message_id(domain)
    message = EmailMessage(policy=SMTP)
    message["Subject"] = email.subject
    message["From"] = from_email
    message["To"] = ", ".join(email.recipients)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = message_id
    message["X-Report-Run"] = str(email.run_id)
    message.set_content(email.html_body(), subtype="html")
    if email.attachment:
        attachment = Path(email.attachment)
        message.add_attachment(
            attachment.read_bytes(), maintype="application", subtype="octet-stream", filename=attachment.name
        )
    breaker = CircuitBreaker("external_api", target, is_failure=is_smtp_failure)
    with breaker.guard(), AlertEmailHook(smtp_conn_id=smtp_conn_id) as hook:
        hook.send_message(message)
    return message_id


def copy_to_destination(
    source: ObjectStoragePath | Any, destination_url: str, conn_id: str | None, file_name: str
) -> str:
    """Copy the archived file to an object storage destination; return the URL of the copy."""
    from include.reports.storage import publish, storage_path

    target = storage_path(destination_url, conn_id) / file_name
    return publish(source, target)
