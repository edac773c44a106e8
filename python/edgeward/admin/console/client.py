"""The console's way to the admin API: an in-process ASGI call to the same
Starlette app, carrying the browser's session cookie (and, for writes, the
session's CSRF token as the API's `X-CSRF-Token` header). So a page does
exactly what the API does for that session: the same role rules, grant
checks, store code and audit events; the console adds only HTML."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.types import ASGIApp, Message

from edgeward.admin.session import CSRF_HEADER


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    data: Any  # the JSON body (None when empty)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def message(self) -> str:
        """The API error's message, as the API words it."""
        if isinstance(self.data, dict) and isinstance(self.data.get("msg"), str):
            return str(self.data["msg"])
        return f"the API answered {self.status}"


async def call(
    app: ASGIApp,
    request: Request,
    method: str,
    path: str,
    *,
    body: dict[str, Any] | None = None,
    query: dict[str, str] | None = None,
    csrf: str = "",
    if_match: str = "",
) -> Answer:
    """`method path` on the API as the browser's session."""
    raw = json.dumps(body).encode() if body is not None else b""
    headers = [
        (b"ngrok-version", b"2"),
        (b"host", request.headers.get("host", "127.0.0.1").encode("latin-1")),
        (b"cookie", request.headers.get("cookie", "").encode("latin-1")),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
    ]
    if csrf:
        headers.append((CSRF_HEADER.encode(), csrf.encode()))
    if if_match:
        headers.append((b"if-match", if_match.encode("latin-1")))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": request.url.scheme,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": urlencode(query or {}).encode(),
        "headers": headers,
        "client": request.scope.get("client"),
        "server": request.scope.get("server"),
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    status = 500
    chunks: list[bytes] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    await app(scope, receive, send)
    text = b"".join(chunks)
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    return Answer(status, data)


__all__ = ["Answer", "call"]
