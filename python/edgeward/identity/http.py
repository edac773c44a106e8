"""Small helpers for the HTTP requests the flow makes through the `Fetch`
effect (token endpoints, user APIs, discovery, JWKS), and the URL rules
for the providers' endpoints."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Generator, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from edgeward.hooks import Effect, EffectResult, Fetch, FetchResult

FETCH_TIMEOUT = 10.0


class ProviderError(Exception):
    """The provider answered with an error or something unusable. The
    message names the endpoint and the problem, never a token or code."""


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, allow_insecure_loopback: bool) -> str | None:
    """Why `url` cannot be a provider endpoint, or None: it must be
    https://, or http:// on a loopback host when the edge config allows it
    (tests against a local provider)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return f"not a URL: {url!r}"
    if not parts.hostname or parts.scheme not in ("http", "https"):
        return f"not an http(s) URL: {url!r}"
    if parts.scheme == "http":
        if not is_loopback(parts.hostname):
            return f"{url!r} is not https:// (only a loopback host may use http://)"
        if not allow_insecure_loopback:
            return (
                f"{url!r} is http://: allowed only on loopback with the edge config's"
                " identity.allow_insecure_loopback_issuer: true (for tests)"
            )
    return None


def fetch(request: Fetch) -> Generator[Effect, EffectResult, FetchResult]:
    result = yield request
    if not isinstance(result, FetchResult):
        raise TypeError(f"Fetch answered with {type(result).__name__}")
    return result


def get_json(
    url: str, headers: Sequence[tuple[str, str]] = (), *, what: str
) -> Generator[Effect, EffectResult, Any]:
    """GET a JSON document; `ProviderError` unless 200 and JSON."""
    hdrs = (("accept", "application/json"), *headers)
    result = yield from fetch(Fetch(url, headers=hdrs, timeout_s=FETCH_TIMEOUT))
    return _json(result, what, url)


def post_form(
    url: str, form: Mapping[str, str], headers: Sequence[tuple[str, str]] = (), *, what: str
) -> Generator[Effect, EffectResult, Any]:
    """POST a form, expect JSON back (token endpoints)."""
    body = urlencode(form).encode()
    hdrs = (
        ("accept", "application/json"),
        ("content-type", "application/x-www-form-urlencoded"),
        *headers,
    )
    result = yield from fetch(
        Fetch(url, method="POST", headers=hdrs, body=body, timeout_s=FETCH_TIMEOUT)
    )
    return _json(result, what, url, errors_in_body=True)


def _json(result: FetchResult, what: str, url: str, *, errors_in_body: bool = False) -> Any:
    where = f"{what} ({_origin(url)})"
    if result.status == 0:
        raise ProviderError(f"{where}: {result.error or 'no answer'}")
    try:
        data = json.loads(result.body) if result.body else None
    except ValueError:
        data = None
    if errors_in_body and isinstance(data, Mapping) and isinstance(data.get("error"), str):
        # OAuth error responses (RFC 6749 §5.2): the code only, never the body.
        raise ProviderError(f"{where}: {_safe(data['error'])} (HTTP {result.status})")
    if result.status != 200:
        raise ProviderError(f"{where}: HTTP {result.status}")
    if data is None:
        raise ProviderError(f"{where}: the answer is not JSON")
    return data


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _safe(text: str) -> str:
    return "".join(c for c in text[:64] if c.isalnum() or c in "_-. ")


__all__ = [
    "ProviderError",
    "check_url",
    "fetch",
    "get_json",
    "is_loopback",
    "post_form",
]
