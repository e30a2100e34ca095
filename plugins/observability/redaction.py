"""Keep secrets out of what the platform shows: task logs, XComs, error columns, the breaker page.

Airflow's secrets masker hides what it was told about (connection passwords, sensitive extras).
A token in a URL (its query string, its user-info, the path of a Slack incoming webhook) is not
one of those, yet it ends up in exception texts (``... for url: https://hooks.example.com/x?token=...``).

* :func:`mask_url` tells the masker about the secrets of a URL the platform is about to call (so
  the task log hides them from then on) and returns the URL with them replaced by ``***``;
* :func:`redact` returns a text with every secret the masker knows and every URL's secrets
  replaced: use it for what is stored or returned (``last_error`` columns, XCom summaries, the
  breaker's last error), where the log masker does not reach.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

REPLACEMENT = "***"
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
#: A query parameter's value anywhere in a text (also in a relative URL such as ``/hook?token=...``).
_QUERY_VALUE = re.compile(r"(?<=[?&])([A-Za-z0-9_.~-]+=)([^&\s#'\"<>]{4,})")
#: The secret path of a Slack incoming webhook: /services/T.../B.../<token>
_SLACK_PATH = re.compile(r"(/services/)([^/\s?#]+/[^/\s?#]+/[^/\s?#'\"<>]+)")


def url_secrets(url: str) -> list[str]:
    """The secret parts of ``url``: user-info password, every query value, a Slack webhook's path."""
    parts = urlsplit(url)
    secrets = [parts.password] if parts.password else []
    secrets += [value for _, value in parse_qsl(parts.query, keep_blank_values=False)]
    secrets += [match.group(2) for match in _SLACK_PATH.finditer(parts.path)]
    return [s for s in secrets if s and len(s) >= 4]


def _strip_url(url: str) -> str:
    for secret in sorted(url_secrets(url), key=len, reverse=True):
        url = url.replace(secret, REPLACEMENT)
    return url


def mask_url(url: str) -> str:
    """Register the secrets of ``url`` with Airflow's secrets masker; return the URL without them."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - the task SDK comes with Airflow
        mask_secret = None
    if mask_secret is not None:
        for secret in url_secrets(url):
            mask_secret(secret)
    return _strip_url(url)


def redact(text: object) -> str:
    """``text`` with what the secrets masker knows and the secrets of every URL in it replaced by ``***``."""
    value = str(text)
    try:
        from airflow.sdk._shared.secrets_masker import redact as masker_redact

        value = str(masker_redact(value))
    except ImportError:  # pragma: no cover - the task SDK comes with Airflow
        pass
    value = _URL.sub(lambda match: _strip_url(match.group(0)), value)
    value = _SLACK_PATH.sub(lambda match: match.group(1) + REPLACEMENT, value)
    return _QUERY_VALUE.sub(lambda match: match.group(1) + REPLACEMENT, value)
