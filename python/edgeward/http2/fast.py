"""`H2Server`, the fast path: the connection state machine, frame codec,
HPACK and header checks in Rust (`edgeward_native.H2Server`, through the
facade), emitting this package's event classes. Its reference twin is
`edgeward.http2.connection.H2Server` (h2); both are fed the same byte
streams in tests/http2 and must emit the same events and errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgeward import native
from edgeward.http2.events import (
    Body,
    ConnectionEnded,
    EndBody,
    Request,
    StreamReset,
    WindowOpened,
)
from edgeward.http2.limits import H2Limits

if TYPE_CHECKING:
    from edgeward_native import H2Server as _Native
else:
    _Native = native.NativeH2Server or object

_EVENTS = (Request, Body, EndBody, StreamReset, WindowOpened, ConnectionEnded)
_DEFAULT_LIMITS = H2Limits()


class H2Server(_Native):
    """`scheme` is the connection's, `https` on TLS and `http` otherwise: a
    request's `:scheme` must be the same."""

    __slots__ = ()

    def __new__(cls, limits: H2Limits = _DEFAULT_LIMITS, scheme: bytes = b"http") -> H2Server:
        return super().__new__(cls, limits, scheme, _EVENTS)
