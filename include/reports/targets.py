"""Who and where a report goes: email recipients, object-storage destinations and Slack channels.

Each is checked as it is parsed, with errors that name the field: addresses and their number
(:data:`include.settings.MAX_RECIPIENTS`), and destinations and channels against the operator's
allow-lists (:mod:`include.reports.destinations`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from include.reports.errors import InvalidReportError

if TYPE_CHECKING:
    from include.reports.destinations import AllowedRoot

_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\".]+$")


@dataclass(frozen=True)
class Destination:
    """Where a report goes besides email: an object storage location it is copied to
    (``s3://bucket/prefix``, ``file:///dir``) or a Slack channel it is posted to (``slack:#channel``)."""

    url: str
    conn_id: str | None = None

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def is_slack(self) -> bool:
        return self.scheme == "slack"

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "conn_id": self.conn_id}


def check_recipients(value: Any, *, field: str = "recipients", report: str | None = None) -> tuple[str, ...]:
    """Email addresses, at most :data:`include.settings.MAX_RECIPIENTS` (all of them get the file)."""
    from include.settings import MAX_RECIPIENTS

    if isinstance(value, str):
        value = [part for part in re.split(r"[,;\s]+", value) if part]
    if not isinstance(value, Sequence):
        raise InvalidReportError(
            field, f"expected a list of email addresses, got {type(value).__name__}", report=report
        )
    recipients = []
    for item in value:
        if not isinstance(item, str) or not _EMAIL.match(item.strip()):
            raise InvalidReportError(field, f"{item!r} is not an email address", report=report)
        recipients.append(item.strip())
    unique = tuple(dict.fromkeys(recipients))
    if len(unique) > MAX_RECIPIENTS:
        raise InvalidReportError(
            field, f"{len(unique)} recipients; a report is sent to at most {MAX_RECIPIENTS}", report=report
        )
    return unique


def parse_destination(
    value: Any,
    *,
    field: str = "destinations",
    report: str | None = None,
    allowed: Sequence[AllowedRoot] | None = None,
) -> Destination:
    """An allowed destination from ``"s3://[conn_id@]bucket/prefix"``, ``"file:///dir"``, ``{"url", "conn_id"}``
    or the name of an allowed root (``"exports"``, ``"exports/finance"``).

    Only what the operator allows (``REPORTS_ALLOWED_DESTINATIONS``, see
    :mod:`include.reports.destinations`; ``allowed`` overrides it): anything else names the field and
    the allowed choices.
    """
    from include.reports.destinations import DestinationNotAllowed, allowed_roots, is_slack, resolve

    conn_id = None
    if isinstance(value, Mapping):
        unknown = set(value) - {"url", "conn_id"}
        if unknown:
            raise InvalidReportError(
                field, f"unknown keys {sorted(unknown)}; expected 'url' and 'conn_id'", report=report
            )
        conn_id = value.get("conn_id") or None
        value = value.get("url")
    if not isinstance(value, str) or not value.strip():
        raise InvalidReportError(
            field, f"expected an object storage URL such as s3://bucket/prefix, got {value!r}", report=report
        )
    value = value.strip()
    if is_slack(value):
        return parse_slack_channel(value, conn_id, field=field, report=report)
    if "://" in value:
        parts = urlsplit(value)
        if not parts.scheme or parts.scheme in ("http", "https", "mailto"):
            raise InvalidReportError(
                field, f"{value!r} is not an object storage URL (s3://bucket/prefix, file:///dir)", report=report
            )
        if parts.scheme in ("file", "local"):
            if parts.netloc or not parts.path.startswith("/"):
                raise InvalidReportError(
                    field, f"{value!r}: a file URL needs an absolute path (file:///dir)", report=report
                )
        elif not parts.hostname:
            raise InvalidReportError(field, f"{value!r} names no bucket", report=report)
        if parts.username:  # s3://conn_id@bucket/prefix: the connection travels separately
            conn_id = conn_id or parts.username
            parts = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else ""))
        value = urlunsplit(parts)
    try:
        url, conn_id = resolve(value, conn_id, allowed_roots() if allowed is None else allowed)
    except (DestinationNotAllowed, ValueError) as error:
        raise InvalidReportError(field, str(error), report=report) from None
    scheme = urlsplit(url).scheme
    if not _has_filesystem(scheme):
        raise InvalidReportError(
            field,
            f"no object storage filesystem is installed for {scheme}:// (for s3:// install the Amazon provider)",
            report=report,
        )
    return Destination(url, conn_id)


def parse_slack_channel(
    value: Any, conn_id: str | None = None, *, field: str = "slack_channels", report: str | None = None
) -> Destination:
    """A Slack destination ``slack:#channel`` (or ``#channel``) on the operator's ``REPORTS_ALLOWED_SLACK_CHANNELS``."""
    from include.reports.destinations import SLACK_PREFIX, DestinationNotAllowed, allowed_channels, resolve_channel

    if not isinstance(value, str) or not value.strip():
        raise InvalidReportError(
            field, f"expected a Slack channel such as slack:#reports, got {value!r}", report=report
        )
    try:
        allowed = resolve_channel(value, conn_id, allowed_channels())
    except (DestinationNotAllowed, ValueError) as error:
        raise InvalidReportError(field, str(error), report=report) from None
    return Destination(f"{SLACK_PREFIX}{allowed.channel}", allowed.conn_id)


def check_slack_channels(value: Any) -> tuple[Destination, ...] | None:
    if value is None or value == []:
        return None
    if isinstance(value, str):
        value = [part for part in re.split(r"[,;\s]+", value) if part]
    if not isinstance(value, Sequence):
        raise InvalidReportError("slack_channels", f"expected a list of Slack channels, got {type(value).__name__}")
    channels = [parse_slack_channel(item) for item in value]
    return tuple(dict.fromkeys(channels))


def _has_filesystem(scheme: str) -> bool:
    if scheme in ("file", "local"):
        return True
    try:
        from airflow.sdk.io.fs import has_fs
    except ImportError:  # pragma: no cover - the task SDK is always installed with Airflow
        return scheme == "s3"
    return has_fs(scheme)
