"""The delivery layer: every Slack, email and webhook send of the platform, and what became of it.

====================  ==========================================================================
``messages``          what can be sent: :class:`Email` (text, HTML, attachments, inline images),
                      :class:`SlackMessage` (Block Kit, a file), :class:`WebhookPost` (signed JSON)
``sending``           :func:`deliver`: the one place a message is sent; returns an :class:`Outcome`
``email``             SMTP through the provider's ``SmtpHook`` (:mod:`hooks.smtp`)
``slack``             Slack through the provider's ``SlackWebhookHook`` / ``SlackHook``
``webhook``           signed webhooks through ``HttpHook`` (:mod:`hooks.external_api`)
``connections``       which Airflow connections exist and fit which channel
``recording``         :class:`DeliveryWorker`: identity, heartbeat, deadline; recording outcomes
                      with retries until the warehouse answers
====================  ==========================================================================

Failures are judged by :mod:`hooks.failures` (one classifier per protocol); each server has one
``external_api`` breaker (``smtp:<host>:<port>``, ``<host>:<port>``), whoever sends. Callers:
``include.alerts.outbox`` (alert notifications), ``include.reports`` (report emails) and
``notifiers.task_failure`` (task-failure callbacks). Import from the submodules; this package
imports nothing, so Airflow's plugin loading stays cheap.
"""
