"""Deliver a generated report: email through the SMTP connection, copies to object storage.

Email goes through the delivery layer (:mod:`delivery.email`: the SMTP provider's hook behind the
``external_api`` circuit breaker of the mail server). A file above the attachment limit is not
attached: the email links to the archived copy (a signed URL on object stores that support it).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from delivery.messages import Email
    from delivery.sending import Outcome


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


def send_report_email(email: ReportEmail, *, smtp_conn_id: str) -> Outcome:
    """Send ``email`` once through the delivery layer (:func:`delivery.sending.deliver`); say what became of it.

    Retries are the run's, not the hook's; the outcome's ``reference`` is the Message-ID.
    """
    from delivery.connections import require_connection
    from delivery.messages import Attachment, Email
    from delivery.sending import deliver, outcome_of

    try:
        conn = require_connection(smtp_conn_id, "SMTP")
    except Exception as error:
        return outcome_of("email", error)
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
    return deliver(smtp_conn_id, message)


def problem_email(run: Mapping[str, Any], owner: str, problems: list[Mapping[str, Any]]) -> Email:
    """The email telling a report's owner which deliveries of a run failed for good or have an unknown outcome."""
    from delivery.messages import Email

    lines = [f"Report {run['report_name']!r}, run {run['id']} (slot {run['slot']:%Y-%m-%d %H:%M %Z}):", ""]
    for delivery in problems:
        lines.append(f"- {delivery['channel']} {delivery['target']}: {delivery['status']}: {delivery['error']}")
    lines += [
        "",
        "These are not tried again. An unknown outcome means the worker sending it died before it could record "
        "whether it went out: check with the recipients (the Message-ID is fixed per delivery).",
    ]
    return Email(
        to=(owner,),
        subject=f"Report {run['report_name']} run {run['id']}: {len(problems)} delivery problem(s)",
        text="\n".join(lines),
        headers={"X-Report-Run": str(run["id"])},
    )


def copy_to_destination(
    source: ObjectStoragePath | Any, destination_url: str, conn_id: str | None, file_name: str
) -> str:
    """Copy the archived file to an object storage destination; return the URL of the copy."""
    from include.reports.storage import publish, storage_path

    target = storage_path(destination_url, conn_id) / file_name
    return publish(source, target)
