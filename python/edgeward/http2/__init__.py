"""Sans-IO HTTP/2 server side on `h2`, speaking the same per-exchange
language as the HTTP/1 side: a request head, body chunks, an end (with
trailers), plus what only HTTP/2 has (resets, window updates). Nothing here
touches a socket, a clock or trio: callers pass `now` in."""

from edgeward.http2.connection import H2Limits, H2Server
from edgeward.http2.events import (
    Body,
    ConnectionEnded,
    EndBody,
    Request,
    StreamEvent,
    StreamReset,
    WindowOpened,
)

__all__ = [
    "Body",
    "ConnectionEnded",
    "EndBody",
    "H2Limits",
    "H2Server",
    "Request",
    "StreamEvent",
    "StreamReset",
    "WindowOpened",
]
