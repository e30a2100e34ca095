"""SMTP hook that sends a ready-made MIME message (plain text and HTML alternatives).

The SMTP provider's ``send_email_smtp`` builds an HTML-only message; alert notifications need a
``multipart/alternative`` with a text part too, and their own headers. This subclass keeps
everything else of the provider's hook: the ``smtp`` connection (host, port, login, password,
extras ``from_email``, ``timeout``, ``disable_tls``, ``disable_ssl``) and its login logic.
"""

from __future__ import annotations

from email.message import EmailMessage

from airflow.providers.smtp.hooks.smtp import SmtpHook


class AlertEmailHook(SmtpHook):
    """Send :class:`~email.message.EmailMessage` objects through an Airflow SMTP connection.

    Use it as a context manager (it logs in on enter and quits on exit)::

        with AlertEmailHook(smtp_conn_id="smtp_default") as hook:
            hook.send_message(message)

    :param smtp_conn_id: the Airflow connection of the SMTP server.
    """

    hook_name = "SMTP (text and HTML messages)"

    def send_message(self, message: EmailMessage) -> None:
        """Send ``message`` once (retries are the caller's: the alert outbox backs off between attempts)."""
        client = self._smtp_client
        if client is None:
            raise RuntimeError("AlertEmailHook is not connected; use it as a context manager")
        if not message["From"]:
            if not self.from_email:
                raise ValueError(
                    f"SMTP connection {self.smtp_conn_id!r} has no 'from_email' extra and the message has no sender"
                )
            message["From"] = self.from_email
        client.send_message(message)
