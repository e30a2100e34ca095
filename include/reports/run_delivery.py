"""Delivering a generated run: one delivery per recipient list and destination, each claimed,
sent and recorded on its own, so a retried task sends only what is missing.

How a file is sent (email, object storage) is :mod:`include.reports.delivery`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from include.reports.config import ReportSettings
from include.reports.errors import DeliveryError
from include.reports.run_store import Services, error_text, one, rows, summary
from include.sql import load_sql
from observability import metrics

if TYPE_CHECKING:
    from hooks.circuit_breaker import CircuitOpenError

log = logging.getLogger(__name__)


@dataclass
class _Outcome:
    """What became of a run's deliveries in this task."""

    sent: int = 0
    failures: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    refused: CircuitOpenError | None = None
    #: object-storage URLs the file was published to in this task
    published: list[str] = field(default_factory=list)


def _delivery_targets(run: Mapping[str, Any], settings: ReportSettings) -> list[dict[str, Any]]:
    from include.reports.destinations import channel_name, is_slack

    targets = []
    if run["recipients"]:
        targets.append({"channel": "email", "target": ", ".join(run["recipients"]), "conn_id": settings.smtp_conn_id})
    for destination in run["destinations"] or []:
        if is_slack(destination["url"]):
            conn_id = destination.get("conn_id") or settings.slack_conn_id
            targets.append({"channel": "slack", "target": channel_name(destination["url"]), "conn_id": conn_id})
            continue
        conn_id = destination.get("conn_id") or settings.destination_conn_id
        targets.append({"channel": "object_storage", "target": destination["url"], "conn_id": conn_id})
    return targets


def deliver_run(
    run_id: int, *, worker: str, services: Services | None = None, outlet_events: Any = None
) -> dict[str, Any]:
    """Send run ``run_id`` to each of its recipients and destinations that has not had it yet.

    Each delivery is claimed atomically and marked ``sent`` right after it went out, so a retried
    task sends only what is missing. Failed deliveries are recorded and retried (by the task's
    retries, then by later DAG runs) up to ``max_attempts``. Every copy to object storage is an
    asset event (its URL) through the alias ``report_files`` (``outlet_events``: the task's).
    """
    ctx = services or Services.create()
    run, deliveries = _open_deliveries(ctx, run_id)
    outcome = _Outcome()
    for delivery in deliveries:
        if delivery["status"] != "sent":
            _attempt(ctx, run, delivery, worker, outcome)
    _announce_files(run, outcome.published, outlet_events)
    run, deliveries = _settle(ctx, run_id, outcome.failures)
    if outcome.failures:
        raise DeliveryError(
            f"report {run['report_name']!r} run {run_id}: {len(outcome.failures)} of {len(deliveries)} deliveries "
            "failed: " + "; ".join(outcome.failures)
        )
    if outcome.refused is not None:
        raise outcome.refused
    return summary(
        run,
        sent=outcome.sent,
        waiting=outcome.waiting,
        deliveries=[{k: d[k] for k in ("channel", "target", "status")} for d in deliveries],
    )


def _open_deliveries(ctx: Services, run_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run and its deliveries (created on first sight); skip a run that has no file to deliver."""
    from airflow.sdk.exceptions import AirflowSkipException

    with ctx.hook.transaction() as conn:
        run = one(conn, "select_run", {"run_id": run_id})
        if run is None or run["status"] not in ("generated", "delivered"):
            status = run["status"] if run else "missing"
            raise AirflowSkipException(f"report run {run_id} is {status}: nothing to deliver")
        for target in _delivery_targets(run, ctx.settings):
            conn.execute(load_sql("reports/insert_delivery.sql"), {"run_id": run_id, **target})
        return run, rows(conn, "select_deliveries", {"run_id": run_id})


def _attempt(
    ctx: Services, run: Mapping[str, Any], delivery: Mapping[str, Any], worker: str, outcome: _Outcome
) -> None:
    """Claim one delivery, send it, and record what happened (in the table and in ``outcome``)."""
    from hooks.circuit_breaker import CircuitOpenError

    settings, label = ctx.settings, f"{delivery['channel']} {delivery['target']}"
    where = f"report {run['report_name']!r} run {run['id']}"
    with ctx.hook.transaction() as conn:
        claimed = one(
            conn,
            "claim_delivery",
            {
                "delivery_id": delivery["id"],
                "worker": worker,
                "lease_seconds": settings.claim_lease_seconds,
                "max_attempts": settings.max_attempts,
            },
        )
    if not claimed:
        if delivery["attempts"] >= settings.max_attempts:
            outcome.failures.append(f"{label}: gave up after {delivery['attempts']} attempts ({delivery['error']})")
        else:  # another task holds it, or one died while sending: it may have gone out
            outcome.waiting.append(label)
            log.warning(
                "%s: %s is claimed by %s until %s; it may have been sent, so it is only tried again once that "
                "claim expires",
                where,
                label,
                delivery["claimed_by"],
                delivery["claim_expires_at"],
            )
        return
    try:
        location, message_id = _deliver_one(run, delivery, settings)
    except CircuitOpenError as error:
        with ctx.hook.transaction() as conn:
            conn.execute(load_sql("reports/release_delivery.sql"), {"delivery_id": delivery["id"]})
        outcome.refused = error
        log.warning("%s: %s refused: %s", where, label, error)
        return
    except Exception as error:
        _record_failure(ctx, delivery, error)
        outcome.failures.append(f"{label}: {error_text(error)}")
        log.warning("%s: %s failed: %s", where, label, error_text(error))
        return
    with ctx.hook.transaction() as conn:
        conn.execute(
            load_sql("reports/mark_delivery_sent.sql"),
            {"delivery_id": delivery["id"], "location": location, "message_id": message_id},
        )
    outcome.sent += 1
    if delivery["channel"] == "object_storage" and location:
        outcome.published.append(location)
    metrics.incr("reports.delivered", channel=delivery["channel"])
    log.info("%s: delivered to %s", where, label)


def _announce_files(run: Mapping[str, Any], published: list[str], outlet_events: Any) -> None:
    """The published copies are asset events (``report_files``) and the task's OpenLineage outputs."""
    from include.lineage.assets import REPORT_FILES, emit_asset_events, file_uri
    from include.lineage.openlineage import report_lineage

    if not published:
        return
    uris = {file_uri(url): {"report": run["report_name"], "report_run_id": run["id"]} for url in published}
    if outlet_events is not None:
        emit_asset_events(outlet_events, REPORT_FILES, uris)
    report_lineage(None, inputs=[file_uri(run["location"])], outputs=list(uris))
    log.info("report %r run %s published: %s", run["report_name"], run["id"], ", ".join(uris))


def _record_failure(ctx: Services, delivery: Mapping[str, Any], error: BaseException) -> None:
    from include.reports.destinations import DestinationNotAllowed

    with ctx.hook.transaction() as conn:
        conn.execute(
            load_sql("reports/mark_delivery_failed.sql"),
            {
                "delivery_id": delivery["id"],
                "error": error_text(error),
                # a destination no longer allowed will not become allowed by trying again
                "give_up_at": ctx.settings.max_attempts if isinstance(error, DestinationNotAllowed) else None,
            },
        )
    metrics.incr("reports.delivery_failed", channel=delivery["channel"])


def _settle(ctx: Services, run_id: int, failures: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Mark the run delivered when every delivery was sent, failed when the rest gave up."""
    max_attempts = ctx.settings.max_attempts
    with ctx.hook.transaction() as conn:
        deliveries = rows(conn, "select_deliveries", {"run_id": run_id})
        if all(d["status"] == "sent" for d in deliveries):
            conn.execute(load_sql("reports/mark_run_delivered.sql"), {"run_id": run_id})
        elif failures and all(d["status"] == "sent" or d["attempts"] >= max_attempts for d in deliveries):
            conn.execute(
                load_sql("reports/mark_run_failed.sql"),
                {"run_id": run_id, "status": "failed", "error": "deliveries gave up: " + "; ".join(failures)},
            )
        return one(conn, "select_run", {"run_id": run_id}), deliveries


def _check_destination(delivery: Mapping[str, Any], file_name: str, settings: ReportSettings) -> None:
    """Again at copy time: the target is still under an allowed root, with that root's connection."""
    from include.reports.destinations import DestinationNotAllowed, allowed_roots, check_local_target, resolve

    allowed = allowed_roots()
    url, root_conn = resolve(delivery["target"], None, allowed)
    expected = root_conn or settings.destination_conn_id
    if delivery["conn_id"] != expected:
        raise DestinationNotAllowed(
            f"{delivery['target']!r} is written with connection {expected!r}, not {delivery['conn_id']!r}"
        )
    check_local_target(f"{url}/{file_name}", allowed)


def _deliver_one(
    run: Mapping[str, Any], delivery: Mapping[str, Any], settings: ReportSettings
) -> tuple[str | None, str | None]:
    """Perform one delivery; return (location or link, Message-ID)."""
    from include.reports.delivery import (
        ReportEmail,
        chart_png,
        copy_to_destination,
        deliver_to_slack,
        send_report_email,
    )
    from include.reports.storage import is_local, link_for, location_without_credentials, storage_path

    archive = storage_path(run["location"])
    if delivery["channel"] == "object_storage":
        _check_destination(delivery, run["file_name"], settings)
        return copy_to_destination(archive, delivery["target"], delivery["conn_id"], run["file_name"]), None
    if delivery["channel"] == "slack":
        return deliver_to_slack(run, delivery, settings)

    attach = run["bytes"] <= run["max_attachment_bytes"]
    local_copy = None
    link = None
    recorded = None  # what the delivery row keeps: the file's URL, never a signed link
    expiry_text = None
    if attach:
        if is_local(archive):
            attachment = archive.path
        else:  # the SMTP hook attaches local files
            local_copy = settings.staging_dir / f"mail-{run['id']}-{delivery['id']}" / run["file_name"]
            local_copy.parent.mkdir(parents=True, exist_ok=True)
            with archive.open("rb") as src, local_copy.open("wb") as out:
                shutil.copyfileobj(src, out, 8 * 1024 * 1024)
            attachment = str(local_copy)
    else:
        attachment = None
        link = link_for(archive, settings.link_expiry_seconds)
        recorded = location_without_credentials(archive)
        if not is_local(archive):
            expiry = datetime.now(UTC) + timedelta(seconds=settings.link_expiry_seconds)
            expiry_text = f"{expiry:%Y-%m-%d %H:%M} UTC"
    slot: datetime = run["slot"].astimezone(UTC)
    subject = run["email_subject"] or f"Report {run['report_name']} ({slot:%Y-%m-%d %H:%M} UTC)"
    email = ReportEmail(
        run_id=run["id"],
        delivery_id=delivery["id"],
        report_name=run["report_name"],
        slot_text=f"{slot:%Y-%m-%d %H:%M} UTC",
        recipients=tuple(run["recipients"]),
        subject=subject,
        file_name=run["file_name"],
        rows=run["rows"] or 0,
        bytes=run["bytes"] or 0,
        attachment=attachment,
        link=link,
        link_expiry_text=expiry_text,
        note=run.get("data_note"),
        chart_png=chart_png(run),
    )
    try:
        message_id = send_report_email(email, smtp_conn_id=delivery["conn_id"] or settings.smtp_conn_id)
    finally:
        if local_copy is not None:
            shutil.rmtree(local_copy.parent, ignore_errors=True)
    return recorded, message_id
