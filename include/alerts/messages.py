"""What a notification says: one message per transition, rendered for Slack, email and webhooks.

Every message names the alert, what happened (fired, still firing, recovered, error), the value,
the condition and threshold, since when, and links to the alert's evaluation in Airflow. An
alert may bring its own ``subject_template`` / ``message_template`` (Jinja, sandboxed, bounded in
output size and rendering time: :mod:`include.alerts.templates`; the variables are the keys of
:meth:`MessageContext.variables`); a template that fails to render or passes a limit falls back to
the default text and says so: what it produced is never sent.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from include.alerts.conditions import describe_condition, format_number

HEADLINES = {
    "fired": "FIRING",
    "rearmed": "STILL FIRING",
    "recovered": "RECOVERED",
    "error": "ALERT ERROR",
}
SLACK_EMOJI = {
    "fired": ":red_circle:",
    "rearmed": ":repeat:",
    "recovered": ":large_green_circle:",
    "error": ":warning:",
}
EMAIL_COLOURS = {"fired": "#d93025", "rearmed": "#e37400", "recovered": "#188038", "error": "#b06000"}


@dataclass(frozen=True)
class MessageContext:
    """Everything a message may mention about one transition."""

    alert_id: int
    alert_name: str
    kind: str  # fired / rearmed / recovered / error
    state: str
    previous_state: str
    severity: str
    condition: str
    threshold: float | None
    value: float | None
    value_text: str | None
    previous_value: float | None
    since: datetime | None
    evaluated_at: datetime
    url: str
    description: str | None = None
    owner: str | None = None
    error: str | None = None
    dry_run: bool = False

    @property
    def condition_text(self) -> str:
        return describe_condition(self.condition, self.threshold)

    @property
    def shown_value(self) -> str:
        if self.value is not None:
            return format_number(self.value)
        return self.value_text if self.value_text is not None else "null"

    @property
    def incident_key(self) -> str:
        """Same for every message of one firing (fired, rearmed, recovered): lets receivers group them."""
        started = self.since or self.evaluated_at
        return f"alert-{self.alert_id}-{started:%Y%m%dT%H%M%SZ}"

    def variables(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            condition_text=self.condition_text,
            shown_value=self.shown_value,
            headline=HEADLINES[self.kind],
            incident_key=self.incident_key,
            since=_when(self.since),
            evaluated_at=_when(self.evaluated_at),
            threshold_text=format_number(self.threshold) if self.threshold is not None else None,
        )
        return data


def _when(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if moment else None


def default_subject(ctx: MessageContext) -> str:
    prefix = "[DRY RUN] " if ctx.dry_run else ""
    head = f"{prefix}[{HEADLINES[ctx.kind]}][{ctx.severity}] {ctx.alert_name}"
    if ctx.kind == "error":
        return f"{head}: the alert could not be evaluated"
    return f"{head}: value {ctx.shown_value} ({ctx.condition_text})"


def default_lines(ctx: MessageContext) -> list[tuple[str, str]]:
    """(label, text) pairs of the message body."""
    lines = [("Alert", ctx.alert_name)]
    if ctx.kind == "error":
        lines.append(("Error", ctx.error or "unknown error"))
        lines.append(("Since", _when(ctx.since or ctx.evaluated_at) or ""))
    else:
        what = {
            "fired": "the condition is met",
            "rearmed": "the condition is still met",
            "recovered": "the condition is no longer met",
        }[ctx.kind]
        lines.append(("What", what))
        lines.append(("Value", ctx.shown_value))
        lines.append(("Condition", ctx.condition_text))
        if ctx.previous_value is not None:
            lines.append(("Previous value", format_number(ctx.previous_value)))
        if ctx.kind == "recovered":
            lines.append(("Was firing since", _when(ctx.since) or "unknown"))
        else:
            lines.append(("Firing since", _when(ctx.since) or _when(ctx.evaluated_at) or ""))
    lines.append(("Severity", ctx.severity))
    lines.append(("Checked at", _when(ctx.evaluated_at) or ""))
    if ctx.owner:
        lines.append(("Owner", ctx.owner))
    if ctx.description:
        lines.append(("Description", ctx.description))
    return lines


def sample_context(name: str, severity: str = "warning", condition: str = ">", threshold: float | None = 0.0):
    """A context with every variable set, to try an alert's templates when its definition is checked."""
    from datetime import UTC

    now = datetime.now(UTC)
    return MessageContext(
        alert_id=0,
        alert_name=name,
        kind="fired",
        state="triggered",
        previous_state="ok",
        severity=severity,
        condition=condition,
        threshold=threshold,
        value=1.0,
        value_text="1",
        previous_value=0.0,
        since=now,
        evaluated_at=now,
        url="http://airflow.example/dags/alerts",
        description="",
        owner="",
        error="",
    )


def _render_template(template: str, ctx: MessageContext) -> str:
    from include.alerts.templates import render

    return render(template, ctx.variables())


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str
    #: the alert's own message (from ``message_template``), if any
    custom_body: str | None = None
    #: set when a custom template failed and the default text was used
    template_error: str | None = None


def build_message(
    ctx: MessageContext, subject_template: str | None = None, message_template: str | None = None
) -> Message:
    """The subject, plain text and HTML of one notification."""
    template_error = None
    subject = default_subject(ctx)
    custom_body = None
    try:
        if subject_template:
            subject = _render_template(subject_template, ctx).strip() or subject
        if message_template:
            custom_body = _render_template(message_template, ctx).strip()
    except Exception as error:  # a user's template must never stop the notification
        from include.alerts.templates import TemplateError

        reason = str(error) if isinstance(error, TemplateError) else f"{type(error).__name__}: {error}"
        template_error = f"message template failed ({reason}); default text used"
        subject, custom_body = default_subject(ctx), None
    lines = default_lines(ctx)
    text_parts = [subject, ""]
    if custom_body:
        text_parts += [custom_body, ""]
    text_parts += [f"{label}: {value}" for label, value in lines]
    text_parts += ["", f"Evaluation in Airflow: {ctx.url}"]
    if template_error:
        text_parts += ["", f"Note: {template_error}"]
    text = "\n".join(text_parts)

    colour = EMAIL_COLOURS[ctx.kind]
    rows = _html_rows(lines)
    custom_html = f"<p>{html.escape(custom_body).replace(chr(10), '<br>')}</p>" if custom_body else ""
    note = f"<p><em>Note: {html.escape(template_error)}</em></p>" if template_error else ""
    body_html = (
        "<html><body>"
        f'<h2 style="color:{colour}">{html.escape(subject)}</h2>'
        f"{custom_html}<table>{rows}</table>"
        f'<p><a href="{html.escape(ctx.url, quote=True)}">Open the evaluation in Airflow</a></p>'
        f"{note}</body></html>"
    )
    return Message(subject=subject, text=text, html=body_html, custom_body=custom_body, template_error=template_error)


def slack_payload(ctx: MessageContext, message: Message) -> dict[str, Any]:
    """A Block Kit message (``text`` is the notification fallback)."""
    fields = _slack_fields([(k, v) for k, v in default_lines(ctx) if k not in ("Alert", "Description")])
    header = f"{SLACK_EMOJI[ctx.kind]} {HEADLINES[ctx.kind]}: {ctx.alert_name}"
    if ctx.dry_run:
        header = f"[DRY RUN] {header}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header[:150], "emoji": True}},
    ]
    summary = message.custom_body or ctx.description
    if summary:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(summary)[:3000]}})
    blocks.append({"type": "section", "fields": fields})
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open in Airflow"},
                    "url": ctx.url,
                    "action_id": "open_alert_run",
                }
            ],
        }
    )
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"incident `{ctx.incident_key}` · severity *{ctx.severity}*"}],
        }
    )
    return {"text": message.subject, "blocks": blocks}


def _slack_fields(lines: list[tuple[str, str]]) -> list[dict[str, str]]:
    """(label, value) lines as section fields (Slack allows at most 10 in a section)."""
    return [{"type": "mrkdwn", "text": f"*{label}*\n{_slack_escape(value)}"} for label, value in lines][:10]


def _html_rows(lines: list[tuple[str, str]]) -> str:
    """(label, value) lines as the rows of an HTML table."""
    return "".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0">{html.escape(label)}</th>'
        f"<td>{html.escape(value)}</td></tr>"
        for label, value in lines
    )


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_body(ctx: MessageContext, message: Message) -> dict[str, Any]:
    """The JSON document posted to a webhook (the idempotency key is added when it is sent)."""
    return {
        "event": f"alert.{ctx.kind}",
        "alert": {
            "id": ctx.alert_id,
            "name": ctx.alert_name,
            "severity": ctx.severity,
            "condition": ctx.condition,
            "threshold": ctx.threshold,
            "owner": ctx.owner,
            "description": ctx.description,
        },
        "state": ctx.state,
        "previous_state": ctx.previous_state,
        "value": ctx.value,
        "value_text": ctx.value_text,
        "previous_value": ctx.previous_value,
        "since": ctx.since.isoformat() if ctx.since else None,
        "evaluated_at": ctx.evaluated_at.isoformat(),
        "error": ctx.error,
        "incident_key": ctx.incident_key,
        "subject": message.subject,
        "message": message.text,
        "url": ctx.url,
        "dry_run": ctx.dry_run,
    }


def email_payload(message: Message) -> dict[str, Any]:
    return {"subject": message.subject, "text": message.text, "html": message.html}


def describe_target(channel_type: str, channel: Mapping[str, Any]) -> str:
    """Where a channel sends, for people: ``email to a@x, b@y``, ``slack #ops``, ``webhook /hooks/alerts``."""
    if channel_type == "email":
        to = channel.get("to") or []
        return "email to " + ", ".join([to] if isinstance(to, str) else to)
    where = channel.get("channel") if channel_type == "slack" else channel.get("endpoint")
    connection = channel.get("connection")
    return " ".join(filter(None, [channel_type, where, f"(connection {connection})" if connection else None]))


def problem_payload(
    channel_type: str, alert: Mapping[str, Any], failed: Mapping[str, Any], problem: str, outcome: str
) -> dict[str, Any]:
    """The notice telling an alert's owner that notification ``failed`` ended ``outcome`` (failed / unknown)."""
    target = describe_target(failed["channel_type"], failed["channel"])
    if outcome == "unknown":
        what = "has an unknown outcome"
        advice = (
            "It may or may not have arrived, and it is not sent again (that could duplicate it): "
            "check with the recipient."
        )
    else:
        what = "could not be delivered"
        advice = (
            "It is not tried again: fix the channel (its connection, address or channel) in the alert's definition."
        )
    subject = f"[DELIVERY PROBLEM] alert {alert['name']}: the {failed['kind']} notification by {target} {what}"
    lines = [
        ("Alert", str(alert["name"])),
        ("Notification", f"{failed['kind']} (outbox id {failed['id']})"),
        ("Channel", target),
        ("Outcome", outcome),
        ("Why", problem),
    ]
    text = "\n".join([subject, "", *(f"{label}: {value}" for label, value in lines), "", advice])
    if channel_type == "slack":
        return {
            "text": subject,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": subject[:150], "emoji": True}},
                {"type": "section", "fields": _slack_fields(lines)},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": _slack_escape(advice)}]},
            ],
        }
    if channel_type == "email":
        body = (
            f"<html><body><h2>{html.escape(subject)}</h2><table>{_html_rows(lines)}</table>"
            f"<p>{html.escape(advice)}</p></body></html>"
        )
        return {"subject": subject, "text": text, "html": body}
    return {
        "body": {
            "event": "alert.delivery_problem",
            "alert": {"id": alert["id"], "name": alert["name"], "owner": alert.get("owner")},
            "notification": {"id": failed["id"], "kind": failed["kind"], "channel": target},
            "outcome": outcome,
            "problem": problem,
            "subject": subject,
            "message": text,
        }
    }
