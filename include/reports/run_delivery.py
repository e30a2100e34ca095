"""Delivering a generated run: one delivery per recipient list and destination, each claimed,
sent and recorded on its own, so a retried task sends only what is missing.

The same mechanism as the alerts' outbox (:mod:`include.alerts.outbox`):

* **Claim**: by this task's delivery worker (:class:`delivery.recording.DeliveryWorker`: identity,
  heartbeat, deadline), committed before anything is sent. A row ``sending`` is its worker's
  until that worker is gone; it is never claimed again while the worker lives.
* **Send**: one function per channel (:data:`CHANNELS`), which sends and returns what is recorded
  (an :class:`delivery.sending.Outcome` and the location the row keeps). Failures mean what the
  delivery layer's classifiers say, the same for every caller.
* **Record**: by the worker that sent, with retries on a fresh connection until the warehouse
  answers or the task's own time runs out: ``sent``; a transient failure ``failed`` (tried again
  by the task's retries and later DAG runs, up to ``max_attempts``); a permanent one ``failed``
  for good at once; a send refused by an open breaker goes back to ``pending``, uncounted.
* **Settle**: a row left ``sending`` by a worker that is gone (killed between the send and the
  record, or past its deadline) has an unknown outcome. An object-storage copy is made again (the
  copy replaces the same file: idempotent); an email or a Slack post becomes ``unknown`` with the
  reason and is never sent twice.

A delivery that failed for good or has an unknown outcome is said on its row and on the run's
``error``, fails the task (without retries), and is told once to the report's owner when the owner
is an email address (otherwise the failed task is where an operator sees it).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from include.reports.config import ReportSettings
from include.reports.errors import DeliveryError
from include.reports.run_store import Services, error_text, one, rows, summary
from include.sql import load_sql
from observability import metrics

if TYPE_CHECKING:
    from delivery.recording import DeliveryWorker
    from delivery.sending import Outcome

log = logging.getLogger(__name__)


class DeliveryGaveUp(DeliveryError, AirflowFailException):
    """Deliveries failed for good or have an unknown outcome: retrying the task cannot help."""


@dataclass(frozen=True)
class Sent:
    """What one channel's send came to, and what the delivery row keeps."""

    outcome: Outcome
    #: object storage: the URL of the copy; email: the file's URL when it was linked, not attached
    location: str | None = None


@dataclass
class _Round:
    """What became of a run's deliveries in this task."""

    sent: int = 0
    #: transient failures, tried again
    failures: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
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
    """Send run ``run_id`` to each recipient list and destination that has not had it yet (see the module docstring).

    :param worker: a label for this worker's identity (``claimed_by`` starts with it).
    :param outlet_events: the task's; every copy to object storage is an asset event (its URL)
        through the alias ``report_files``.
    """
    from delivery.recording import DeliveryWorker
    from include.settings import delivery_heartbeat_seconds

    ctx = services or Services.create()
    run = _open_run(ctx, run_id)
    progress = _Round()
    with DeliveryWorker(ctx.hook, heartbeat_seconds=delivery_heartbeat_seconds(), label=worker) as delivering:
        settle_interrupted(delivering, run_id)
        for delivery in _deliveries(ctx, run_id):
            _take(delivering, ctx, run, delivery, progress)
        _announce_files(run, progress.published, outlet_events)
        run, deliveries = delivering.record(
            lambda conn: _settle_run(conn, run_id, ctx.settings), what=f"report run {run_id}: its status"
        )
        given_up = [d for d in deliveries if _given_up(d, ctx.settings)]
        _tell_owner(delivering, ctx, run, [d for d in given_up if d["owner_told_at"] is None])
    where = f"report {run['report_name']!r} run {run_id}"
    gave_up = (
        f"{len(given_up)} of {len(deliveries)} deliveries failed for good or have an unknown outcome (not tried "
        "again): " + "; ".join(_problem(d) for d in given_up)
    )
    if progress.failures:  # the task's retries may still deliver these
        failed = f"{len(progress.failures)} of {len(deliveries)} deliveries failed (tried again): "
        raise DeliveryError(f"{where}: {failed}" + "; ".join(progress.failures) + (f"; {gave_up}" if given_up else ""))
    if given_up:
        raise DeliveryGaveUp(f"{where}: {gave_up}")
    if progress.deferred:
        raise DeliveryError(f"{where}: not attempted (circuit breaker open): " + "; ".join(progress.deferred))
    return summary(
        run,
        sent=progress.sent,
        waiting=progress.waiting,
        deliveries=[{k: d[k] for k in ("channel", "target", "status")} for d in deliveries],
    )


def _open_run(ctx: Services, run_id: int) -> dict[str, Any]:
    """The run, its deliveries created on first sight; skip a run that has no file to deliver."""
    from airflow.sdk.exceptions import AirflowSkipException

    with ctx.hook.transaction() as conn:
        run = one(conn, "select_run", {"run_id": run_id})
        if run is None or run["status"] not in ("generated", "delivered"):
            status = run["status"] if run else "missing"
            raise AirflowSkipException(f"report run {run_id} is {status}: nothing to deliver")
        for target in _delivery_targets(run, ctx.settings):
            conn.execute(load_sql("reports/insert_delivery.sql"), {"run_id": run_id, **target})
        return run


def _deliveries(ctx: Services, run_id: int) -> list[dict[str, Any]]:
    with ctx.hook.transaction() as conn:
        return rows(conn, "select_deliveries", {"run_id": run_id})


def _label(delivery: Mapping[str, Any]) -> str:
    return f"{delivery['channel']} {delivery['target']}"


def _given_up(delivery: Mapping[str, Any], settings: ReportSettings) -> bool:
    """Never tried again: an unknown outcome, or failed with no attempt left."""
    return delivery["status"] == "unknown" or (
        delivery["status"] == "failed" and delivery["attempts"] >= settings.max_attempts
    )


def _problem(delivery: Mapping[str, Any]) -> str:
    return f"{_label(delivery)}: {delivery['status']}: {delivery['error']}"


def settle_interrupted(worker: DeliveryWorker, run_id: int) -> list[dict[str, Any]]:
    """Settle run ``run_id``'s deliveries left ``sending`` by a worker that is gone (``settle_deliveries.sql``)."""
    from delivery.sending import RESEND_WHEN_UNKNOWN

    settled = worker.record(
        lambda conn: rows(conn, "settle_deliveries", {"run_id": run_id, "resend": sorted(RESEND_WHEN_UNKNOWN)}),
        what=f"report run {run_id}: settling deliveries whose worker is gone",
    )
    for delivery in settled:
        if delivery["status"] == "unknown":
            metrics.incr("reports.delivery_unknown", channel=delivery["channel"])
        log.warning("report run %s: %s: %s", run_id, _label(delivery), delivery["error"])
    return settled


def _take(
    worker: DeliveryWorker, ctx: Services, run: Mapping[str, Any], delivery: dict[str, Any], progress: _Round
) -> None:
    """Claim one delivery, send it, and record what happened (in the table and in ``progress``)."""
    settings, label = ctx.settings, _label(delivery)
    if delivery["status"] in ("sent", "unknown") or _given_up(delivery, settings):
        return
    if delivery["status"] == "sending":
        progress.waiting.append(label)
        log.warning(
            "report run %s: %s is being sent by %s, alive; it is settled only once that worker is gone",
            run["id"],
            label,
            delivery["claimed_by"],
        )
        return
    if not worker.may_claim():
        progress.waiting.append(label)
        log.warning("report run %s: %s left for a later task: this one's time is nearly out", run["id"], label)
        return
    keys = {"delivery_id": delivery["id"], "worker": worker.id}
    claimed = worker.record(
        lambda conn: one(conn, "claim_delivery", {**keys, "max_attempts": settings.max_attempts}),
        what=f"report run {run['id']}: claiming {label}",
    )
    if not claimed:  # another worker took it meanwhile
        progress.waiting.append(label)
        return
    sent = send_delivery(run, delivery, settings)
    verdict = worker.record(
        lambda conn: _record(conn, keys, claimed["attempts"], sent, settings),
        what=f"report run {run['id']} delivery {delivery['id']} ({label}): {sent.outcome.describe()}",
    )
    if verdict == "sent":
        metrics.incr("reports.delivered", channel=delivery["channel"])
        progress.sent += 1
        if delivery["channel"] == "object_storage" and sent.location:
            progress.published.append(sent.location)
        log.info("report run %s: delivered to %s", run["id"], label)
    elif verdict == "deferred":
        progress.deferred.append(f"{label}: {sent.outcome.reason}")
    elif verdict == "retry":
        metrics.incr("reports.delivery_failed", channel=delivery["channel"])
        progress.failures.append(f"{label}: {sent.outcome.reason}")
        log.warning("report run %s: %s failed, tried again: %s", run["id"], label, sent.outcome.reason)
    else:
        metrics.incr("reports.delivery_failed", channel=delivery["channel"])
        log.error("report run %s: %s failed for good: %s", run["id"], label, sent.outcome.reason)


def _record(conn, keys: Mapping[str, Any], attempts: int, sent: Sent, settings: ReportSettings) -> str:
    """Write one outcome in the worker's transaction; return the verdict (sent, deferred, retry, gave_up).

    Idempotent (every statement checks the row is still this worker's), so a write retried after a
    lost answer is harmless.
    """
    outcome = sent.outcome
    if outcome.delivered:
        conn.execute(
            load_sql("reports/mark_delivery_sent.sql"),
            {**keys, "location": sent.location, "message_id": outcome.reference, "error": outcome.problem},
        )
        return "sent"
    if outcome.status == "deferred":
        conn.execute(load_sql("reports/release_delivery.sql"), {**keys, "error": outcome.reason})
        return "deferred"
    give_up = outcome.status == "permanent" or attempts >= settings.max_attempts
    why = "failed for good" if outcome.status == "permanent" else f"attempt {attempts} of {settings.max_attempts}"
    conn.execute(
        load_sql("reports/mark_delivery_failed.sql"),
        {**keys, "error": f"{why}: {outcome.reason}"[:2000], "give_up": give_up, "max_attempts": settings.max_attempts},
    )
    return "gave_up" if give_up else "retry"


def _settle_run(conn, run_id: int, settings: ReportSettings) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Mark the run delivered when every delivery was sent, failed when the rest gave up (idempotent)."""
    deliveries = rows(conn, "select_deliveries", {"run_id": run_id})
    if all(d["status"] == "sent" for d in deliveries):
        conn.execute(load_sql("reports/mark_run_delivered.sql"), {"run_id": run_id})
    elif all(d["status"] == "sent" or _given_up(d, settings) for d in deliveries):
        problems = "; ".join(_problem(d) for d in deliveries if d["status"] != "sent")
        conn.execute(
            load_sql("reports/mark_run_failed.sql"),
            {"run_id": run_id, "status": "failed", "error": f"deliveries gave up: {problems}"},
        )
    return one(conn, "select_run", {"run_id": run_id}), deliveries


def _tell_owner(worker: DeliveryWorker, ctx: Services, run: Mapping[str, Any], problems: list[dict[str, Any]]) -> None:
    """Tell the report's owner, once, about deliveries that failed for good or have an unknown outcome.

    An owner that is an email address gets one email through the delivery layer; otherwise (or
    when that email fails) the failed task and the run's ``error`` are where an operator sees it.
    """
    from include.reports.delivery import problem_email

    if not problems:
        return
    owner = _owner(ctx, run)
    told = False
    if owner and "@" in owner:
        from delivery.sending import deliver

        outcome = deliver(ctx.settings.smtp_conn_id, problem_email(run, owner, problems))
        told = outcome.delivered
        if not told:
            log.error("report run %s: could not tell the owner %s: %s", run["id"], owner, outcome.describe())
    for delivery in problems:
        log.error("report run %s: %s (owner %s)", run["id"], _problem(delivery), owner or "none")
    if told or not (owner and "@" in owner):
        worker.record(
            lambda conn: conn.execute(
                load_sql("reports/mark_owner_told.sql"), {"delivery_ids": [d["id"] for d in problems]}
            ),
            what=f"report run {run['id']}: owner told about deliveries {[d['id'] for d in problems]}",
        )


def _owner(ctx: Services, run: Mapping[str, Any]) -> str | None:
    if run["report_id"] is None:  # an ad-hoc report
        return None
    with ctx.hook.transaction() as conn:
        report = one(conn, "select_report_by_id", {"report_id": run["report_id"]})
    return (report or {}).get("owner")


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


# --------------------------------------------------------------------------- channels


def send_delivery(run: Mapping[str, Any], delivery: Mapping[str, Any], settings: ReportSettings) -> Sent:
    """Send one delivery through its channel's function (:data:`CHANNELS`); never raises: a failure is an outcome."""
    from delivery.sending import Outcome, outcome_of
    from include.reports.destinations import DestinationNotAllowed

    channel = delivery["channel"]
    try:
        return CHANNELS[channel](run, delivery, settings)
    except DestinationNotAllowed as error:  # no longer allowed: trying again cannot make it so
        return Sent(Outcome(channel, "permanent", error_text(error)))
    except Exception as error:
        return Sent(outcome_of(channel, error))


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


def _copy_to_storage(run: Mapping[str, Any], delivery: Mapping[str, Any], settings: ReportSettings) -> Sent:
    """Copy the archived file to the destination (idempotent: a repeat replaces it with the same bytes)."""
    from delivery.sending import Outcome
    from include.reports.delivery import copy_to_destination
    from include.reports.storage import storage_path

    _check_destination(delivery, run["file_name"], settings)
    url = copy_to_destination(storage_path(run["location"]), delivery["target"], delivery["conn_id"], run["file_name"])
    return Sent(Outcome("object_storage", "delivered"), url)


def _send_email(run: Mapping[str, Any], delivery: Mapping[str, Any], settings: ReportSettings) -> Sent:
    """Email the file (attached, or a link above the attachment limit; a chart shown inline) to the run's recipients."""
    from include.reports.delivery import ReportEmail, chart_png, send_report_email
    from include.reports.storage import is_local, link_for, location_without_credentials, storage_path

    archive = storage_path(run["location"])
    local_copy = link = recorded = expiry_text = attachment = None  # recorded: the file's URL, never a signed link
    if run["bytes"] <= run["max_attachment_bytes"]:
        if is_local(archive):
            attachment = archive.path
        else:  # the SMTP hook attaches local files
            local_copy = settings.staging_dir / f"mail-{run['id']}-{delivery['id']}" / run["file_name"]
            local_copy.parent.mkdir(parents=True, exist_ok=True)
            with archive.open("rb") as src, local_copy.open("wb") as out:
                shutil.copyfileobj(src, out, 8 * 1024 * 1024)
            attachment = str(local_copy)
    else:
        link = link_for(archive, settings.link_expiry_seconds)
        recorded = location_without_credentials(archive)
        if not is_local(archive):
            expiry = datetime.now(UTC) + timedelta(seconds=settings.link_expiry_seconds)
            expiry_text = f"{expiry:%Y-%m-%d %H:%M} UTC"
    slot: datetime = run["slot"].astimezone(UTC)
    email = ReportEmail(
        run_id=run["id"],
        delivery_id=delivery["id"],
        report_name=run["report_name"],
        slot_text=f"{slot:%Y-%m-%d %H:%M} UTC",
        recipients=tuple(run["recipients"]),
        subject=run["email_subject"] or f"Report {run['report_name']}{_audience(run)} ({slot:%Y-%m-%d %H:%M} UTC)",
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
        return Sent(send_report_email(email, smtp_conn_id=delivery["conn_id"] or settings.smtp_conn_id), recorded)
    finally:
        if local_copy is not None:
            shutil.rmtree(local_copy.parent, ignore_errors=True)


def _post_to_slack(run: Mapping[str, Any], delivery: Mapping[str, Any], settings: ReportSettings) -> Sent:
    """Post the file (uploaded on an API token, linked on a webhook) to an allowed Slack channel."""
    from include.reports.delivery import deliver_to_slack

    outcome, location = deliver_to_slack(run, delivery, settings)
    return Sent(outcome, location)


#: One function per channel of ``analytics_report_deliveries``: it sends one delivery of a run and
#: returns what is recorded; it may raise (the error is classified into the outcome).
CHANNELS: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any], ReportSettings], Sent]] = {
    "email": _send_email,
    "object_storage": _copy_to_storage,
    "slack": _post_to_slack,
}


def _audience(run: Mapping[str, Any]) -> str:
    """`` for <audience>`` in the subject of an audience's email (include/reports/audiences.py)."""
    return f" for {run['audience']}" if run.get("audience") else ""
