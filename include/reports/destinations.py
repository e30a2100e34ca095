"""Where reports may be copied: an operator's list of roots and connections, nothing else.

``REPORTS_ALLOWED_DESTINATIONS`` (JSON, configuration, never trigger input) lists the roots::

    [{"name": "exports", "url": "s3://reports-bucket/exports", "conn_id": "aws_reports"},
     {"name": "shared", "url": "file:///srv/exports"}]

A destination (of a stored report, or an ad-hoc trigger's ``destination``) is a root's name, a
name with a sub-path (``exports/finance``), or a URL under a root (same scheme and bucket, the
root's path or below it, no ``.``/``..`` segments); it is copied with the root's connection. A
destination naming another connection, or outside every root, is refused with the allowed choices.

Slack channels reports may post to are a second list, ``REPORTS_ALLOWED_SLACK_CHANNELS`` (JSON)::

    ["#reports", {"channel": "#finance", "conn_id": "slack_finance_webhook"}]

A Slack destination is ``slack:#channel`` (a report's ``destinations``, an ad-hoc trigger's
``slack_channels``); it posts through the entry's connection, or ``REPORTS_SLACK_CONN_ID``
(:mod:`include.reports.config`) when the entry names none. A channel not on the list is refused
with the allowed ones.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SETTING = "REPORTS_ALLOWED_DESTINATIONS"
SLACK_SETTING = "REPORTS_ALLOWED_SLACK_CHANNELS"
#: How a Slack destination is written: ``slack:#channel``.
SLACK_PREFIX = "slack:"
_CHANNEL = re.compile(r"^#[a-z0-9][a-z0-9_-]{0,79}$")
_BAD_SEGMENT = re.compile(r"(?:^|/)(?:\.{1,2})?(?:/|$)")  # "", "." or ".." segments
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class DestinationNotAllowed(ValueError):
    """A destination outside the operator's list (or with a connection it does not name)."""


@dataclass(frozen=True)
class AllowedRoot:
    """One allowed destination root and the connection its copies are written with."""

    name: str
    url: str  # normalised: no trailing slash
    conn_id: str | None = None

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    def describe(self) -> str:
        connection = f", connection {self.conn_id}" if self.conn_id else ""
        return f"{self.name} ({self.url}{connection})"

    def contains(self, url: str) -> bool:
        root, other = urlsplit(self.url), urlsplit(url)
        if (other.scheme, other.netloc) != (root.scheme, root.netloc):
            return False
        base = root.path.rstrip("/")
        return other.path == base or other.path.startswith(base + "/")


def _setting_entries(
    setting: str, raw: str | None, *, key: str, keys: set[str], expected: str
) -> list[tuple[int, dict]]:
    """(index, entry) of the JSON list in ``setting``: a bare string is ``{key: string}``; empty when unset.

    A value that is not a JSON list, or an entry with other keys or without ``key``, is an error
    naming the setting (and the entry's index) and what was ``expected``.
    """
    if not raw or not raw.strip():
        return []
    try:
        entries = json.loads(raw)
    except ValueError as error:
        raise ValueError(f"setting {setting} is not JSON: {error}") from None
    if not isinstance(entries, list):
        raise ValueError(f"setting {setting}: expected a JSON list such as [{expected}]")
    checked = []
    for index, entry in enumerate(entries):
        if isinstance(entry, str):
            entry = {key: entry}
        if not isinstance(entry, dict) or set(entry) - keys or not entry.get(key):
            raise ValueError(f"setting {setting}[{index}]: expected {expected}, got {entry!r}")
        checked.append((index, entry))
    return checked


def parse_allowed(raw: str | None) -> tuple[AllowedRoot, ...]:
    """The roots of ``REPORTS_ALLOWED_DESTINATIONS`` (empty when unset); a bad entry names the setting."""
    roots: list[AllowedRoot] = []
    expected = "{'name', 'url', 'conn_id'}"
    for index, entry in _setting_entries(SETTING, raw, key="url", keys={"name", "url", "conn_id"}, expected=expected):
        url = str(entry["url"]).strip().rstrip("/")
        parts = urlsplit(url)
        if not parts.scheme or parts.username or (parts.scheme in ("file", "local") and parts.netloc):
            raise ValueError(
                f"setting {SETTING}[{index}]: {url!r} is not a root such as s3://bucket/prefix or file:///dir"
            )
        if _BAD_SEGMENT.search(parts.path.removeprefix("/")) and parts.path not in ("", "/"):
            raise ValueError(f"setting {SETTING}[{index}]: {url!r} has empty, '.' or '..' path segments")
        name = str(entry.get("name") or url)
        roots.append(AllowedRoot(name, url, entry.get("conn_id") or None))
    names = [r.name for r in roots]
    if len(set(names)) != len(names):
        raise ValueError(f"setting {SETTING}: destination names must be unique, got {names}")
    return tuple(roots)


def allowed_roots() -> tuple[AllowedRoot, ...]:
    """The operator's roots, read now from ``REPORTS_ALLOWED_DESTINATIONS``."""
    return parse_allowed(os.environ.get(SETTING))


def _choices(allowed: Sequence[AllowedRoot]) -> str:
    if not allowed:
        return f"no destination is allowed (an operator lists them in {SETTING})"
    return "allowed: " + "; ".join(root.describe() for root in allowed)


def resolve(value: str, conn_id: str | None, allowed: Sequence[AllowedRoot]) -> tuple[str, str | None]:
    """(URL, connection) of destination ``value`` (a root name, ``name/sub/path``, or a URL under a root).

    :raises DestinationNotAllowed: outside every root, a path with ``.``/``..`` or empty segments, or
        a connection other than the root's; the message lists the allowed choices.
    """
    value = value.strip().rstrip("/")
    if "://" not in value:  # a root's name, maybe with a sub-path
        name, _, sub = value.partition("/")
        root = next((r for r in allowed if r.name == name), None)
        if root is None or not _NAME.match(name):
            raise DestinationNotAllowed(f"{value!r} is not an allowed destination; {_choices(allowed)}")
        url = f"{root.url}/{sub}" if sub else root.url
    else:
        url = value
    parts = urlsplit(url)
    bad_path = parts.path not in ("", "/") and _BAD_SEGMENT.search(parts.path[1:])
    if parts.query or parts.fragment or "\\" in url or "%" in parts.path or bad_path:
        raise DestinationNotAllowed(f"{value!r}: a destination path may not have empty, '.' or '..' segments")
    root = next((r for r in allowed if r.contains(url)), None)
    if root is None:
        raise DestinationNotAllowed(f"{value!r} is not under an allowed destination; {_choices(allowed)}")
    if conn_id and conn_id != root.conn_id:
        raise DestinationNotAllowed(
            f"{value!r}: connection {conn_id!r} is not allowed there (the destination {root.name} is written "
            f"with {root.conn_id or 'the default credentials'}); {_choices(allowed)}"
        )
    return urlunsplit(parts).rstrip("/"), root.conn_id


def check_local_target(target: str, allowed: Sequence[AllowedRoot]) -> None:
    """At copy time: a ``file://`` target, symbolic links resolved, is still inside its root."""
    parts = urlsplit(target)
    if parts.scheme not in ("file", "local"):
        return
    resolved = Path(parts.path).resolve()
    for root in allowed:
        root_path = Path(urlsplit(root.url).path).resolve()
        if root.scheme == parts.scheme and (resolved == root_path or root_path in resolved.parents):
            return
    raise DestinationNotAllowed(f"{target!r} resolves to {resolved}, outside every allowed destination")


# --------------------------------------------------------------------------- Slack channels


@dataclass(frozen=True)
class AllowedChannel:
    """One Slack channel reports may post to, and its connection (``None``: ``REPORTS_SLACK_CONN_ID``)."""

    channel: str  # "#name"
    conn_id: str | None = None

    def describe(self) -> str:
        return f"{self.channel} (connection {self.conn_id})" if self.conn_id else self.channel


def channel_name(value: str) -> str:
    """``#name`` of ``slack:#name``, ``#name`` or ``name`` (lower case, as Slack names channels)."""
    name = value.strip()
    name = name[len(SLACK_PREFIX) :] if name.lower().startswith(SLACK_PREFIX) else name
    name = name.strip().lower()
    return name if name.startswith("#") else f"#{name}"


def is_slack(value: str) -> bool:
    """Whether a destination is a Slack channel (``slack:#channel``)."""
    return value.strip().lower().startswith(SLACK_PREFIX)


def parse_allowed_channels(raw: str | None) -> tuple[AllowedChannel, ...]:
    """The channels of ``REPORTS_ALLOWED_SLACK_CHANNELS`` (empty when unset); a bad entry names the setting."""
    channels: list[AllowedChannel] = []
    expected = "'#channel' or {'channel', 'conn_id'}"
    entries = _setting_entries(SLACK_SETTING, raw, key="channel", keys={"channel", "conn_id"}, expected=expected)
    for index, entry in entries:
        name = channel_name(str(entry["channel"]))
        if not _CHANNEL.match(name):
            raise ValueError(f"setting {SLACK_SETTING}[{index}]: {entry['channel']!r} is not a Slack channel name")
        channels.append(AllowedChannel(name, entry.get("conn_id") or None))
    names = [c.channel for c in channels]
    if len(set(names)) != len(names):
        raise ValueError(f"setting {SLACK_SETTING}: channels must be unique, got {names}")
    return tuple(channels)


def allowed_channels() -> tuple[AllowedChannel, ...]:
    """The operator's Slack channels, read now from ``REPORTS_ALLOWED_SLACK_CHANNELS``."""
    return parse_allowed_channels(os.environ.get(SLACK_SETTING))


def channel_choices() -> list[str]:
    """``slack:#channel`` of every allowed channel, for the trigger form (empty when the setting is bad)."""
    try:
        return [f"{SLACK_PREFIX}{c.channel}" for c in allowed_channels()]
    except ValueError:  # validate_request names the bad setting; the form just offers nothing
        return []


def resolve_channel(value: str, conn_id: str | None, allowed: Sequence[AllowedChannel]) -> AllowedChannel:
    """The allowed channel of destination ``value`` (``slack:#name``); a connection, if given, must be its own.

    :raises DestinationNotAllowed: a channel not on the list (the message names it and the allowed ones).
    """
    name = channel_name(value)
    found = next((c for c in allowed if c.channel == name), None)
    if found is None:
        if allowed:
            listed = "allowed: " + ", ".join(c.describe() for c in allowed)
        else:
            listed = f"no Slack channel is allowed (an operator lists them in {SLACK_SETTING})"
        raise DestinationNotAllowed(f"Slack channel {name!r} is not allowed; {listed}")
    if conn_id and conn_id != found.conn_id:
        raise DestinationNotAllowed(
            f"Slack channel {name!r}: connection {conn_id!r} is not allowed there (it posts through "
            f"{found.conn_id or 'REPORTS_SLACK_CONN_ID'})"
        )
    return found
