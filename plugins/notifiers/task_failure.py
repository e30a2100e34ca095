"""The failure callback of every task of the platform: Slack and email through the provider notifiers.

Attached to every DAG by :func:`include.categories.platform_dag` as a task-level
``on_failure_callback`` (DAG-level callbacks are unreliable in Airflow 3.3), with the alerts'
channel connections: a Slack connection (an incoming-webhook connection, or a Slack API
connection whose extra ``channel`` names the channel) and an SMTP connection, which mails the
addresses in ``ALERT_EMAIL_TO``. Each channel is sent through the
``external_api`` breaker of its host. A channel that is not configured is skipped, and a
channel that fails is logged: the callback never raises.
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
        for channel, send in (("slack", self._send_slack), ("email", self._send_email)):
            try:
                sent = send(context, summary)
            except Exception as error:  # a callback must never fail the task's finalisation
                log.warning("task failure notification by %s not sent: %s: %s", channel, type(error).__name__, error)
                continue
            if sent:
                log.info("task failure of %s.%s notified by %s", summary["dag_id"], summary["task"], channel)

    @staticmethod
    def _connection(conn_id: str):
        from airflow.sdk import BaseHook

        try:
            return BaseHook.get_connection(conn_id)
        except Exception:  # not configured (AirflowNotFoundException) or unreachable
            log.info("connection %r is not configured; skipping that failure channel", conn_id)
            return None

    def _send_slack(self, context: dict[str, Any], summary: dict[str, str]) -> bool:
        from include.alerts.channels import delivery_breaker, host_of

        conn = self._connection(self.slack_conn_id)
        if conn is None:
            return False
        text = (
            f":x: Task *{summary['dag_id']}.{summary['task']}* failed (try {summary['try_number']}) "
            f"in run `{summary['run_id']}`\n{summary['error']}"
        )
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        ]
        if summary["log_url"]:
            blocks.append(
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "Task log"},
                            "url": summary["log_url"],
                        }
                    ],
                }
            )
        if conn.conn_type == "slack":
            from airflow.providers.slack.notifications.slack import SlackNotifier

            channel = (conn.extra_dejson or {}).get("channel")
            if not channel:
                log.info("Slack API connection %r has no 'channel' extra; skipping Slack", self.slack_conn_id)
                return False
            notifier = SlackNotifier(
                slack_conn_id=self.slack_conn_id, channel=channel, text=text, blocks=blocks, timeout=10
            )
            host = host_of(notifier.hook.get_conn().base_url)
        else:
            from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

            notifier = SlackWebhookNotifier(
                slack_webhook_conn_id=self.slack_conn_id, text=text, blocks=blocks, timeout=10, retry_handlers=[]
            )
            host = host_of(notifier.hook.get_conn().url)
        with delivery_breaker(host).guard():
            notifier.notify(context)
        return True

    def _send_email(self, context: dict[str, Any], summary: dict[str, str]) -> bool:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        from include.alerts.channels import delivery_breaker

        recipients = self.recipients if self.recipients is not None else failure_email_recipients()
        if not recipients:
            log.info("no failure email recipients (ALERT_EMAIL_TO); skipping email")
            return False
        conn = self._connection(self.smtp_conn_id)
        if conn is None:
            return False
        subject = f"[Airflow] task {summary['dag_id']}.{summary['task']} failed"
        log_url = html.escape(summary["log_url"], quote=True)
        link = f'<p><a href="{log_url}">Task log</a></p>' if log_url else ""
        body = (
            f"<p>Task <b>{html.escape(summary['dag_id'])}.{html.escape(summary['task'])}</b> failed "
            f"(try {html.escape(summary['try_number'])}) in run <code>{html.escape(summary['run_id'])}</code>.</p>"
            f"<pre>{html.escape(summary['error'])}</pre>{link}"
        )
        notifier = SmtpNotifier(to=recipients, subject=subject, html_content=body, smtp_conn_id=self.smtp_conn_id)
        with delivery_breaker(f"smtp:{conn.host}:{conn.port or 25}").guard():
            notifier.notify(context)
        return True
