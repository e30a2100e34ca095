"""The SMTP provider's hook, sending a ready-made MIME message exactly once.

The provider's ``send_email_smtp`` builds an HTML-only message and retries the whole send
``retry_limit`` times, so a message the server accepted but whose answer was lost goes out again.
:class:`SmtpMessageHook` keeps everything else of :class:`SmtpHook` (the ``smtp`` connection:
host, port, login, password, extras ``from_email``, ``timeout``, ``disable_tls``,
``disable_ssl``, ``ssl_context``; its STARTTLS and login logic) and sends a message built by
:mod:`delivery.email` once: retries belong to the caller, with backoff, one layer only.
"""

from __future__ import annotations

from email.message import EmailMessage

from airflow.providers.smtp.hooks.smtp import SmtpHook

from hooks.failures import MisconfiguredChannel

#: The port smtplib connects to when the connection names none.
SMTP_DEFAULT_PORT = 25
SMTPS_DEFAULT_PORT = 465


class SmtpMessageHook(SmtpHook):
    """Send :class:`~email.message.EmailMessage` objects through an Airflow SMTP connection, once.

    Use it as a context manager (it connects and logs in on enter and closes on exit)::

        with SmtpMessageHook(smtp_conn_id="smtp_default") as hook:
            refused = hook.send_message(message)

    :param smtp_conn_id: the Airflow connection of the SMTP server.
    """

    hook_name = "SMTP (ready-made messages, sent once)"

    @property
    def smtp_retry_limit(self) -> int:
        """Never re-send on its own: the delivery layer decides (the connection's ``retry_limit`` is ignored)."""
        return 0

    def send_message(self, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
        """Send ``message`` once; return the recipients the server refused (the others got it).

        Every recipient refused raises ``smtplib.SMTPRecipientsRefused``.
        """
        client = self._smtp_client
        if client is None:
            raise RuntimeError("SmtpMessageHook is not connected; use it as a context manager")
        if not message["From"]:
            if not self.from_email:
                raise MisconfiguredChannel(
                    f"SMTP connection {self.smtp_conn_id!r} has no 'from_email' extra and the message has no sender"
                )
            message["From"] = self.from_email
        return client.send_message(message)

    @property
    def server(self) -> tuple[str, int]:
        """``(host, port)`` this hook connects to, from the provider's own reading of the connection.

        Without a port smtplib uses its default: 465 for SMTP over SSL (the provider's default
        unless the extra ``disable_ssl`` is set), 25 otherwise.
        """
        if self.smtp_connection is None:
            self.smtp_connection = self.get_connection(self.smtp_conn_id)
        port = self.port or (SMTPS_DEFAULT_PORT if self.use_ssl else SMTP_DEFAULT_PORT)
        return self.host, int(port)

    @property
    def breaker_target(self) -> str:
        """The breaker target of the mail server: ``smtp:<host>:<port>``, the port really used, whoever sends."""
        host, port = self.server
        return f"smtp:{host}:{port}"
