"""Keep a user-chosen endpoint under its connection's base URL (webhooks, HTTP APIs).

``urljoin(base, endpoint)`` lets an absolute URL (``http://other-host/x``), a scheme-relative one
(``//other-host/x``) or dot segments (``../../admin``) leave the host that the connection's token,
headers and signature are meant for. :func:`url_under_base` only accepts a relative path, joins it
below the base path, and checks the result keeps the base's scheme, host, port and path.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

#: A relative path (segments of unreserved, sub-delims, ``@`` and percent-escapes; no ``:``, so no
#: scheme; no empty segment, so no ``//host``) with an optional query; no ``.`` or ``..`` segment and
#: no encoded dot, slash or backslash. The ``endpoint`` pattern of ``include/alerts/alert.schema.json``.
_SEGMENT = r"(?:[A-Za-z0-9._~!$&'()*+,;=@-]|%[0-9A-Fa-f]{2})+"
ENDPOINT_PATTERN = (
    r"^(?!(?:[^?]*/)?\.{1,2}(?:[/?]|$))(?![^?]*%(?:2[eEfF]|5[cC]))"
    rf"/?(?:{_SEGMENT}(?:/{_SEGMENT})*/?)?(?:\?[A-Za-z0-9._~!$&'()*+,;=@%/?:-]*)?$"
)
_DOT_SEGMENT = re.compile(r"(?:^|/)\.{1,2}(?:/|$)")
_ENCODED = re.compile(r"%(?:2[eEfF]|5[cC])")


class EndpointNotAllowed(ValueError):
    """The endpoint would leave its connection's base URL; nothing was sent."""


def check_endpoint(endpoint: str) -> str:
    """``endpoint`` if it is a relative path (with an optional query) that cannot leave a base URL."""
    path = endpoint.split("?", 1)[0]
    if (
        not re.match(ENDPOINT_PATTERN, endpoint)
        or _DOT_SEGMENT.search(path)
        or _DOT_SEGMENT.search(unquote(path))
        or _ENCODED.search(path)
    ):
        raise EndpointNotAllowed(
            f"endpoint {endpoint!r} is not a path under the connection's URL: give a relative path such as "
            "/alerts/orders (no scheme or host, no '..', no encoded '.', '/' or '\\')"
        )
    return endpoint


def url_under_base(base_url: str, endpoint: str = "") -> str:
    """The absolute URL of ``endpoint`` below ``base_url``; :class:`EndpointNotAllowed` if it would leave it.

    The base's query (e.g. a token in it) is kept, the endpoint's query added to it.
    """
    base = urlsplit(base_url)
    if not endpoint:
        return base_url
    check_endpoint(endpoint)
    path, _, query = endpoint.partition("?")
    base_path = base.path.rstrip("/")
    joined = f"{base_path}/{path.lstrip('/')}" if path.strip("/") else base_path or "/"
    queries = [*parse_qsl(base.query, keep_blank_values=True), *parse_qsl(query, keep_blank_values=True)]
    url = urlunsplit(base._replace(path=joined, query=urlencode(queries)))
    final = urlsplit(url)
    inside = final.path == base_path or final.path.startswith(base_path + "/")
    if (final.scheme, final.hostname, final.port) != (base.scheme, base.hostname, base.port) or not inside:
        raise EndpointNotAllowed(f"endpoint {endpoint!r} leaves {base.scheme}://{base.netloc}{base_path}")
    return url
