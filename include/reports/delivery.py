"""Deliver a generated report: email through the SMTP connection, Slack, copies to object storage.

Email and Slack go through the delivery layer (:mod:`delivery.email`: the SMTP provider's hook;
:mod:`delivery.slack`: the Slack provider's hooks; each behind the ``external_api`` circuit breaker
of its server). A file above the attachment limit is not attached: the email links to the archived
copy (a signed URL on object stores that support it).

**Charts.** The email of a report that has a chart shows it inline in its HTML (``cid:``): the PNG
of a ``png`` report is its file (shown, not attached again); a ``pdf`` report, or a data report
(csv, csv.gz, xlsx) carrying a chart, with email recipients has the chart's PNG archived beside
its file (:func:`include.reports.run_store.chart_image_location`), and attaches its file as usual.

**Slack** (``slack:#channel``): on an API-token connection the file (a ``png`` report: the chart) is
uploaded with ``files_upload_v2`` and the message is its comment; an incoming webhook cannot
upload, so it posts the message with a link to the archived copy. A file above the attachment
limit is linked on both.
"""

from __future__ import annotations

import html
import logging
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from delivery.messages import Email
    from delivery.sending import Outcome
    from include.reports.config import ReportSettings

log = logging.getLogger(__name__)
#: Widest the inline chart is shown in an email (pixels; narrower charts keep their own width).
EMAIL_CHART_WIDTH = 800


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
    #: the chart as PNG, shown inline in the HTML (``cid:`` :attr:`chart_cid`)
    chart_png: bytes | None = None

    def message_id(self, domain: str) -> str:
        """A Message-ID fixed per delivery, so a mail system can recognise a resent message."""
        return f"<report-run-{self.run_id}.delivery-{self.delivery_id}@{domain}>"

    @property
    def chart_cid(self) -> str:
        """The Content-ID of the inline chart (the HTML's ``<img src="cid:...">``)."""
        return f"chart.run-{self.run_id}.delivery-{self.delivery_id}@reports"

    @property
    def chart_is_the_file(self) -> bool:
        """A ``png`` report: the inline chart is its file, which is then not attached again."""
        return self.chart_png is not None and self.file_name.endswith(".png")

    def html_body(self) -> str:
        name = html.escape(self.report_name)
        lines = [f"<p><b>Note:</b> {html.escape(self.note)}</p>"] if self.note else []
        lines.append(
            f"<p>Report <b>{name}</b> for {html.escape(self.slot_text)}: "
            f"{self.rows:,} rows, {_human_size(self.bytes)}.</p>",
        )
        if self.chart_png is not None:
            width = min(EMAIL_CHART_WIDTH, _png_width(self.chart_png) or EMAIL_CHART_WIDTH)
            lines.append(
                f'<p><img src="cid:{html.escape(self.chart_cid, quote=True)}" alt="chart of {name}" '
                f'width="{width}" style="max-width:100%;height:auto"></p>'
            )
        if self.chart_is_the_file:
            lines.append(f"<p>The chart above is the report (<code>{html.escape(self.file_name)}</code>).</p>")
        elif self.attachment:
            lines.append(f"<p>The file <code>{html.escape(self.file_name)}</code> is attached.</p>")
        else:
            expiry = f" (the link is valid until {html.escape(self.link_expiry_text)})" if self.link_expiry_text else ""
            lines.append(
                f"<p>The file is larger than the attachment limit. Download "
                f'<a href="{html.escape(self.link or "", quote=True)}">{html.escape(self.file_name)}</a>{expiry}.</p>'
            )
        lines.append(f"<p style='color:#888'>analytics platform, report run {self.run_id}</p>")
        return "\n".join(lines)


def _png_width(data: bytes) -> int | None:
    """The width of a PNG from its IHDR chunk (bytes 16-20), without an imaging library."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        return None
    return int.from_bytes(data[16:20], "big")


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
    from delivery.messages import Attachment, Email, InlineImage
    from delivery.sending import deliver, outcome_of

    try:
        conn = require_connection(smtp_conn_id, "SMTP")
    except Exception as error:
        return outcome_of("email", error)
    from_email = (conn.extra_dejson or {}).get("from_email") or "reports@analytics-platform.local"
    attach = email.attachment and not email.chart_is_the_file
    chart = (
        (InlineImage(email.chart_cid, email.chart_png, "png", f"{Path(email.file_name).stem}.chart.png"),)
        if email.chart_png is not None
        else ()
    )
    message = Email(
        to=email.recipients,
        subject=email.subject,
        html=email.html_body(),
        attachments=(Attachment(Path(email.attachment)),) if attach else (),
        inline_images=chart,
        message_id=email.message_id(from_email.rsplit("@", 1)[-1]),
        headers={"X-Report-Run": str(email.run_id)},
        from_email=from_email,
    )
    return deliver(smtp_conn_id, message)


#: Where an owner looks to learn whether a delivery of unknown outcome went out, by channel.
_HOW_TO_CHECK = {
    "email": "for an email, ask the recipients (its Message-ID is fixed per delivery)",
    "slack": "for a Slack post, look in the channel",
    "object_storage": "for a copy, look at the destination",
}


def problem_email(run: Mapping[str, Any], owner: str, problems: list[Mapping[str, Any]]) -> Email:
    """The email telling a report's owner which deliveries of a run failed for good or have an unknown outcome."""
    from delivery.messages import Email

    lines = [f"Report {run['report_name']!r}, run {run['id']} (slot {run['slot']:%Y-%m-%d %H:%M %Z}):", ""]
    for delivery in problems:
        lines.append(f"- {delivery['channel']} {delivery['target']}: {delivery['status']}: {delivery['error']}")
    lines += [
        "",
        "These are not tried again. An unknown outcome means the worker sending it died before it could record "
        "whether it went out: "
        + "; ".join(sorted({_HOW_TO_CHECK.get(d["channel"], _HOW_TO_CHECK["email"]) for d in problems}))
        + ".",
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


def chart_png(run: Mapping[str, Any]) -> bytes | None:
    """The PNG of a run's chart (its file for ``png``, else the image archived beside it) to show in its email.

    ``None`` without a chart, when the image is missing, or when it is above the run's attachment
    limit (a ``png`` report too large is then linked like any file).
    """
    from include.reports.run_store import chart_image_location
    from include.reports.storage import storage_path

    location = chart_image_location(run)
    if location is None:
        return None
    image = storage_path(location)
    if not image.exists():  # generated before charts were drawn beside their files: the email goes without
        log.warning("report run %s: no chart image at %s; the email goes out without it", run["id"], location)
        return None
    if image.stat().st_size > run["max_attachment_bytes"]:
        log.info("report run %s: the chart image is above the attachment limit; not shown inline", run["id"])
        return None
    with image.open("rb") as data:
        return data.read()


# --------------------------------------------------------------------------- Slack


@dataclass(frozen=True)
class ReportPost:
    """A report posted to a Slack channel: the message, and the file uploaded or linked."""

    report_name: str
    slot_text: str
    channel: str
    file_name: str
    rows: int
    bytes: int
    #: a local copy of the file to upload (API-token connections); ``None``: a link is posted
    path: Path | None = None
    #: the archived copy's link: what an incoming webhook posts, and what replaces a file too large to upload
    link: str | None = None
    too_large: bool = False
    note: str | None = None

    def text(self) -> str:
        """The message (mrkdwn): what the report is, and the link to a file too large to upload."""
        lines = [f":warning: {_mrkdwn(self.note)}"] if self.note else []
        lines.append(
            f"Report *{_mrkdwn(self.report_name)}* for {self.slot_text}: {self.rows:,} rows, {_human_size(self.bytes)}."
        )
        if self.too_large and self.link:
            lines.append(f"The file is larger than the upload limit: <{self.link}|{_mrkdwn(self.file_name)}>")
        return "\n".join(lines)


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def send_report_to_slack(post: ReportPost, *, slack_conn_id: str) -> Outcome:
    """Post ``post`` once through the delivery layer (:func:`delivery.sending.deliver`); say what became of it.

    With :attr:`ReportPost.path` the file is uploaded (``files_upload_v2``, the message as its
    comment: an API-token connection); else the message carries :attr:`ReportPost.link` (an
    incoming webhook, or a file too large). The outcome's ``reference`` is the file id or message ts.
    """
    from delivery.messages import SlackFile, SlackMessage
    from delivery.sending import deliver

    shared = None
    if post.path is not None:
        shared = SlackFile(path=post.path, filename=post.file_name, title=post.file_name)
    elif post.link and not post.too_large:  # the webhook posts the link in place of the file
        shared = SlackFile(path=Path(post.file_name), filename=post.file_name, title=post.file_name, link=post.link)
    message = SlackMessage(text=post.text(), channel=post.channel, file=shared)
    return deliver(slack_conn_id, message)


def uploads_files(conn_id: str) -> bool:
    """Whether Slack connection ``conn_id`` uploads files (an API token) rather than posting links (a webhook)."""
    from delivery.connections import require_connection

    return require_connection(conn_id, "Slack").conn_type == "slack"


@contextmanager
def local_file(archive: ObjectStoragePath, directory: Path) -> Iterator[Path]:
    """The archived file on local disk (itself when local; else a copy in ``directory``, removed afterwards)."""
    from include.reports.storage import is_local

    if is_local(archive):
        yield Path(archive.path)
        return
    directory.mkdir(parents=True, exist_ok=True)
    copy = directory / archive.name
    try:
        with archive.open("rb") as src, copy.open("wb") as out:
            shutil.copyfileobj(src, out, 8 * 1024 * 1024)
        yield copy
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def deliver_to_slack(
    run: Mapping[str, Any], delivery: Mapping[str, Any], settings: ReportSettings
) -> tuple[Outcome, str | None]:
    """Post run ``run`` to the Slack channel of ``delivery`` (checked against the allow-list again).

    Returns the outcome and, when a link was posted, the archived copy's URL (never a signed link).
    Raises :class:`~include.reports.destinations.DestinationNotAllowed` for a channel no longer allowed.
    """
    from include.reports.storage import link_for, location_without_credentials, storage_path

    conn_id = check_slack_delivery(delivery, settings)
    archive = storage_path(run["location"])
    slot: datetime = run["slot"].astimezone(UTC)
    uploads = uploads_files(conn_id)
    too_large = (run["bytes"] or 0) > run["max_attachment_bytes"]
    fields = {
        "report_name": run["report_name"],
        "slot_text": f"{slot:%Y-%m-%d %H:%M} UTC",
        "channel": delivery["target"],
        "file_name": run["file_name"],
        "rows": run["rows"] or 0,
        "bytes": run["bytes"] or 0,
        "note": run.get("data_note"),
    }
    if uploads and not too_large:
        scratch = settings.staging_dir / f"slack-{run['id']}-{delivery['id']}"
        with local_file(archive, scratch) as path:
            return send_report_to_slack(ReportPost(path=path, **fields), slack_conn_id=conn_id), None
    link = link_for(archive, settings.link_expiry_seconds)
    post = ReportPost(link=link, too_large=too_large, **fields)
    return send_report_to_slack(post, slack_conn_id=conn_id), location_without_credentials(archive)


def check_slack_delivery(delivery: Mapping[str, Any], settings: ReportSettings) -> str:
    """Again at send time: the channel is still allowed, with the connection it was planned with; return that."""
    from include.reports.destinations import DestinationNotAllowed, allowed_channels, resolve_channel

    allowed = resolve_channel(delivery["target"], None, allowed_channels())
    expected = allowed.conn_id or settings.slack_conn_id
    if delivery["conn_id"] != expected:
        raise DestinationNotAllowed(
            f"Slack channel {delivery['target']!r} posts through connection {expected!r}, not {delivery['conn_id']!r}"
        )
    return expected
