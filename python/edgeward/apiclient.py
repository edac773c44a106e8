"""A small client of the admin API for the command line (`edgeward authtoken
... --api URL`): JSON in and out over the standard library's urllib, the
API key as `Authorization: Bearer`, `Ngrok-Version: 2`. Errors come back as
`ApiClientError` with the body's `error_code` and `msg`.

    client = ApiClient("https://edge.example.com:9443", key, ca="ca.pem")
    created = client.call("POST", "/credentials", {"acl": ["bind:x.internal"]})
    for item in client.pages("/credentials", "credentials"): ...
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

from edgeward.errors import EdgewardError

API_KEY_ENV = "EDGEWARD_API_KEY"
TIMEOUT = 30.0


class ApiClientError(EdgewardError):
    """The API answered an error, or could not be reached."""

    def __init__(self, msg: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(f"{msg} ({code}, {status})" if code else msg)
        self.status = status
        self.code = code
        self.msg = msg


class ApiClient:
    def __init__(self, url: str, key: str, *, ca: str | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ApiClientError(f"--api must be an http(s):// URL, not {url!r}")
        self.base = url.rstrip("/")
        self.key = key
        self.context = ssl.create_default_context(cafile=ca) if parts.scheme == "https" else None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request; the decoded JSON answer (None for 204)."""
        data = json.dumps(body).encode() if body is not None else None
        url = (
            path
            if path.startswith(("http://", "https://"))
            else urljoin(self.base + "/", path.lstrip("/"))
        )
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.key}")
        request.add_header("Ngrok-Version", "2")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT, context=self.context) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                error = json.loads(raw)
                raise ApiClientError(
                    error["msg"], error["status_code"], error["error_code"]
                ) from None
            except (ValueError, KeyError, TypeError):
                raise ApiClientError(f"{method} {url}: HTTP {exc.code}", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiClientError(f"cannot reach {self.base}: {reason}") from None
        return json.loads(raw) if raw else None

    def pages(self, path: str, key: str) -> Iterator[dict[str, Any]]:
        """Every item of a list, following `next_page_uri`."""
        next_uri: str | None = path
        while next_uri:
            page = self.call("GET", next_uri)
            yield from page[key]
            next_uri = page.get("next_page_uri")


__all__ = ["API_KEY_ENV", "ApiClient", "ApiClientError"]
