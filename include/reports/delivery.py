"""Deliver a generated report: email through the SMTP connection, copies to object storage.

Email goes through the delivery layer (:mod:`delivery.email`: the SMTP provider's hook behind the
``external_api`` circuit breaker of the mail server). A file above the attachment limit is not
attached: the email links to the archived copy (a signed URL on object stores that support it).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath


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

    def message_id(self, domain: str) -> str:
        """A Message-ID fixed per delivery, so a mail system can recognise a resent message."""
        return f"<report-run-{self.run_id}.delivery-{self.delivery_id}@{domain}>"

    def html_body(self) -> str:
        name = html.escape(self.report_name)
        lines = [
            f"<p>Report <b>{name}</b> for {html.escape(self.slot_text)}: "
            f"{self.rows:,} rows, {_human_size(self.bytes)}.</p>",
        ]
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
    """Send ``email`` once through the delivery layer (:mod:`delivery.email`); return its Message-ID.

    Retries are the run's, not the hook's; a failure raises the error the delivery layer classifies.
    """
    from delivery.connections import require_connection
    from delivery.email import send_email
    from delivery.messages import Attachment, Email

    conn = require_connection(smtp_conn_id, "SMTP")
    from_email = (conn.extra_dejson or {}).get("from_email") or "reports@analytics-platform.local"
    message = Email(
        to=email.recipients,
        subject=email.subject,
        html=email.html_body(),
        attachments=(Attachment(Path(email.attachment)),) if email.attachment else (),
        message_id=email.message_id(from_email.rsplit("@", 1)[-1]),
        headers={"X-Report-Run": str(email.run_id)},
        from_email=from_email,
    )
    return str(send_email(smtp_conn_id, message).reference)


def copy_to_destination(
    source: ObjectStoragePath | Any, destination_url: str, conn_id: str | None, file_name: str
) -> str:
    """Copy the archived file to an object storage destination; return the URL of the copy."""
    from include.reports.storage import publish, storage_path

    target = storage_path(destination_url, conn_id) / file_name
    return publish(source, target)
