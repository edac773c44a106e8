"""Sans-IO HTTP/2 server side, speaking the same per-exchange language as
the HTTP/1 side: a request head, body chunks, an end (with trailers), plus
what only HTTP/2 has (resets, window updates). Nothing here touches a socket,
a clock or trio: callers pass `now` in.

`H2Server` is the native fast path (`edgeward.http2.fast`, Rust) when the
native module loads, else the reference on h2 (`edgeward.http2.connection`);
``EDGEWARD_BACKEND=python`` forces the reference. `NATIVE` says which runs.
"""

from typing import TYPE_CHECKING

from edgeward import native as _native
from edgeward.http2.events import (
    Body,
    ConnectionEnded,
    EndBody,
    Request,
    StreamEvent,
    StreamReset,
    WindowOpened,
)
from edgeward.http2.limits import H2Limits

NATIVE: bool = _native.NativeH2Server is not None

if TYPE_CHECKING or not NATIVE:
    from edgeward.http2.connection import H2Server
else:
    from edgeward.http2.fast import H2Server

__all__ = [
    "NATIVE",
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
