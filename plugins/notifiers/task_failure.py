"""The failure callback of every task of the platform: Slack and email through the delivery layer.

Attached to every DAG by :func:`include.categories.platform_dag` as a task-level
``on_failure_callback`` (DAG-level callbacks are unreliable in Airflow 3.3), with the alerts'
channel connections: a Slack connection (an incoming-webhook connection, or a Slack API
connection whose extra ``channel`` names the channel) and an SMTP connection, which mails the
addresses in ``ALERT_EMAIL_TO``. Both are sent by :func:`delivery.sending.deliver`, like alerts
and reports: the same classification of failures, the same breaker per server. A channel whose
connection is not defined is skipped, and a channel that fails is logged: the callback never
raises and sends each message once (no retries: a failure callback has no later).
"""

from __future__ import annotations

import html
import logging
import os
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)


def _failure_summary(context: dict[str, Any]) -> dict[str, str]:
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    map_index = getattr(ti, "map_index", -1)
    if map_index is not None and map_index >= 0:
        task_id = f"{task_id}[{map_index}]"
    error = context.get("exception")
    error_text = f"{type(error).__name__}: {error}" if error is not None else "unknown error"
    try:
        log_url = ti.log_url if ti is not None else ""
    except Exception:
        log_url = ""
    return {
        "dag_id": str(dag_id),
        "task": str(task_id),
        "run_id": str(context.get("run_id") or getattr(ti, "run_id", "?")),
        "try_number": str(getattr(ti, "try_number", "?")),
        "error": error_text[:800],
        "log_url": log_url,
    }


def failure_email_recipients() -> list[str]:
    """Who gets task-failure emails: ``ALERT_EMAIL_TO`` (comma-separated; the old worker's ALERT_EMAIL_*)."""
    raw = os.environ.get("ALERT_EMAIL_TO", "")
    return [address.strip() for address in raw.replace(";", ",").split(",") if address.strip()]


class TaskFailureNotifier(BaseNotifier):
    """Tell the platform's Slack channel and failure recipients that a task failed.

    :param slack_conn_id: Slack connection (``slackwebhook`` or ``slack`` type).
    :param smtp_conn_id: SMTP connection.
    :param recipients: email addresses; default: ``ALERT_EMAIL_TO`` read when the callback runs.
    """

    template_fields = ()

    def __init__(self, *, slack_conn_id: str, smtp_conn_id: str, recipients: list[str] | None = None) -> None:
        super().__init__()
        self.slack_conn_id = slack_conn_id
        self.smtp_conn_id = smtp_conn_id
        self.recipients = recipients

    def notify(self, context: dict[str, Any]) -> None:
        summary = _failure_summary(context)
        for conn_id, build in ((self.slack_conn_id, _slack_message), (self.smtp_conn_id, self._email)):
            try:
                self._send(conn_id, build(summary), summary)
            except Exception as error:  # a callback must never fail the task's finalisation
                log.warning(
                    "task failure notification through %r not sent: %s: %s", conn_id, type(error).__name__, error
                )

    def _send(self, conn_id: str, message: Any, summary: dict[str, str]) -> None:
        from delivery.connections import connection_problem
        from delivery.sending import channel_of, deliver

        if message is None:
            return
        channel = channel_of(message)
        problem = connection_problem(conn_id, channel)
        if problem is not None:
            log.info("%s; skipping the %s failure channel", problem, channel)
            return
        outcome = deliver(conn_id, message)
        if not outcome.delivered:
            log.warning("task failure notification by %s not sent: %s", channel, outcome.describe())
        elif outcome.problem:
            log.warning("task failure notification by %s reached only some recipients: %s", channel, outcome.problem)
        else:
            log.info("task failure of %s.%s notified by %s", summary["dag_id"], summary["task"], channel)

    def _email(self, summary: dict[str, str]):
        from delivery.messages import Email

        recipients = self.recipients if self.recipients is not None else failure_email_recipients()
        if not recipients:
            log.info("no failure email recipients (ALERT_EMAIL_TO); skipping email")
            return None
        where = f"{summary['dag_id']}.{summary['task']}"
        log_url = html.escape(summary["log_url"], quote=True)
        link = f'<p><a href="{log_url}">Task log</a></p>' if log_url else ""
        body = (
            f"<p>Task <b>{html.escape(where)}</b> failed "
            f"(try {html.escape(summary['try_number'])}) in run <code>{html.escape(summary['run_id'])}</code>.</p>"
            f"<pre>{html.escape(summary['error'])}</pre>{link}"
        )
        text = f"Task {where} failed (try {summary['try_number']}) in run {summary['run_id']}.\n\n{summary['error']}"
        if summary["log_url"]:
            text += f"\n\nTask log: {summary['log_url']}"
        return Email(to=tuple(recipients), subject=f"[Airflow] task {where} failed", text=text, html=body)


def _slack_message(summary: dict[str, str]):
    from delivery.messages import SlackMessage

    text = (
        f":x: Task *{summary['dag_id']}.{summary['task']}* failed (try {summary['try_number']}) "
        f"in run `{summary['run_id']}`\n{summary['error']}"
    )
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if summary["log_url"]:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Task log"}, "url": summary["log_url"]}
                ],
            }
        )
    return SlackMessage(text=text, blocks=tuple(blocks))
