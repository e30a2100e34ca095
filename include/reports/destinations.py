"""Where reports may be copied: an operator's list of roots and connections, nothing else.

``REPORTS_ALLOWED_DESTINATIONS`` (JSON, configuration, never trigger input) lists the roots::

    [{"name": "exports", "url": "s3://reports-bucket/exports", "conn_id": "aws_reports"},
     {"name": "shared", "url": "file:///srv/exports"}]

A destination (of a stored report, or an ad-hoc trigger's ``destination``) is a root's name, a
name with a sub-path (``exports/finance``), or a URL under a root (same scheme and bucket, the
root's path or below it, no ``.``/``..`` segments); it is copied with the root's connection. A
destination naming another connection, or outside every root, is refused with the allowed choices.
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


def parse_allowed(raw: str | None) -> tuple[AllowedRoot, ...]:
    """The roots of ``REPORTS_ALLOWED_DESTINATIONS`` (empty when unset); a bad entry names the setting."""
    if not raw or not raw.strip():
        return ()
    try:
        entries = json.loads(raw)
    except ValueError as error:
        raise ValueError(f"setting {SETTING} is not JSON: {error}") from None
    if not isinstance(entries, list):
        raise ValueError(f"setting {SETTING}: expected a JSON list of destinations")
    roots: list[AllowedRoot] = []
    for index, entry in enumerate(entries):
        if isinstance(entry, str):
            entry = {"url": entry}
        if not isinstance(entry, dict) or set(entry) - {"name", "url", "conn_id"} or not entry.get("url"):
            raise ValueError(f"setting {SETTING}[{index}]: expected {{'name', 'url', 'conn_id'}}, got {entry!r}")
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
