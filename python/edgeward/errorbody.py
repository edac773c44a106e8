"""The body of every error the edge answers itself, in one format.

Plain text by default, JSON when the client's `Accept` prefers
`application/json` (an API client). Both carry the same four facts and
nothing else: the status, the stable error code, a generic message, and the
request id that finds the details in the operator's log. Details (upstream
addresses, errno text, tracebacks) never go into a public body.

    text/plain; charset=utf-8           application/json
    502 the upstream refused ...        {"error": {"status": 502,
    error: ERR_EDGEWARD_3006                       "code": "ERR_EDGEWARD_3006",
    request_id: 5f1e...0001                        "message": "the upstream refused ...",
                                                   "request_id": "5f1e...0001"}}
"""

from __future__ import annotations

import json
from collections.abc import Iterable

TEXT = b"text/plain; charset=utf-8"
JSON = b"application/json"


def render(
    status: int, code: str, message: str, request_id: str, accept: bytes | None = None
) -> tuple[bytes, bytes]:
    """(content type, body) of an error answer for a client that sent `accept`."""
    if prefers_json(accept):
        error = {"status": status, "code": code, "message": message, "request_id": request_id}
        return JSON, json.dumps({"error": error}).encode() + b"\n"
    text = f"{status} {message}\nerror: {code}\n"
    if request_id:
        text += f"request_id: {request_id}\n"
    return TEXT, text.encode()


def accept_of(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """A request's Accept fields (lower-case names), joined; None without any."""
    values = [value for name, value in headers if name == b"accept"]
    return b", ".join(values) if values else None


def prefers_json(accept: bytes | None) -> bool:
    """Whether an `Accept` value (RFC 9110 §12.5.1; several fields joined by
    commas) ranks `application/json` above `text/plain`.

    Each type takes the q-value of its most specific matching range (exact,
    then `type/*`, then `*/*`); JSON wins when its q is higher, or on a tie
    when `application/json` is named exactly and before any exact
    `text/plain`. So `application/json` and `application/json, text/plain,
    */*` get JSON; a browser's `text/html,...,*/*;q=0.8`, curl's `*/*` and
    no Accept at all get text."""
    if not accept:
        return False
    best = [(-1, 0.0, 0), (-1, 0.0, 0)]  # JSON's and text's (specificity, q, position)
    for position, item in enumerate(accept.split(b",")):
        media, _, params = item.partition(b";")
        media = media.strip().lower()
        q = _quality(params)
        for i, ranges in enumerate(_RANGES):
            specificity = ranges.get(media, -1)
            if specificity > best[i][0]:
                best[i] = (specificity, q, position)
    (json_spec, json_q, json_at), (text_spec, text_q, text_at) = best
    if json_q != text_q:
        return json_q > text_q
    return json_q > 0 and json_spec == 2 and (text_spec < 2 or json_at < text_at)


_RANGES = (
    {JSON: 2, b"application/*": 1, b"*/*": 0},
    {b"text/plain": 2, b"text/*": 1, b"*/*": 0},
)
"""The media ranges that match JSON and plain text, by specificity."""


def _quality(params: bytes) -> float:
    """The q parameter (default 1; malformed counts as 0: not acceptable)."""
    for param in params.split(b";"):
        name, _, value = param.partition(b"=")
        if name.strip().lower() == b"q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


__all__ = ["JSON", "TEXT", "accept_of", "prefers_json", "render"]
