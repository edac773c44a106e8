"""Events of an HTTP/1.1 message exchange, shared by every codec.

Header names are lower-case bytes; values are bytes as on the wire, without
surrounding whitespace. Bodies arrive as any number of `Data` events followed
by one `EndOfMessage` (carrying trailers, if any). Events are plain data
classes without validation (`event_classes`): the codecs validate what they
parse, and what is sent is validated when it is serialised.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Final, TypeAlias

from edgeward.http1.builds import load

if TYPE_CHECKING:
    from edgeward.http1.event_classes import (
        ConnectionClosed,
        Data,
        EndOfMessage,
        Headers,
        InformationalResponse,
        Request,
        Response,
    )
else:  # the compiled classes when built with Cython (see event_classes.py)
    _classes = load("event_classes")
    Headers = _classes.Headers
    Request = _classes.Request
    Response = _classes.Response
    InformationalResponse = _classes.InformationalResponse
    Data = _classes.Data
    EndOfMessage = _classes.EndOfMessage
    ConnectionClosed = _classes.ConnectionClosed

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Event",
    "FramingError",
    "Headers",
    "InformationalResponse",
    "LocalProtocolError",
    "ProtocolError",
    "Request",
    "Response",
    "State",
]

Event: TypeAlias = (
    Request | Response | InformationalResponse | Data | EndOfMessage | ConnectionClosed
)


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA: Final = _Sentinel("NEED_DATA")
"""`next_event()`: feed more bytes first."""
PAUSED: Final = _Sentinel("PAUSED")
"""`next_event()`: the current message is complete; call `start_next_cycle()`
(or the connection switched protocols / must close)."""


class State(enum.Enum):
    """Where one side of the connection is in the exchange (h11's states).

    A client goes IDLE -> SEND_BODY -> DONE; a server IDLE -> SEND_RESPONSE
    (after the request head, through any 1xx) -> SEND_BODY -> DONE. DONE
    becomes MUST_CLOSE when either side disabled keep-alive, MIGHT_SWITCH_PROTOCOL
    while a client's Upgrade/CONNECT awaits the answer, SWITCHED_PROTOCOL once
    it was accepted (the bytes then belong to the new protocol)."""

    IDLE = "IDLE"
    SEND_RESPONSE = "SEND_RESPONSE"
    SEND_BODY = "SEND_BODY"
    DONE = "DONE"
    MUST_CLOSE = "MUST_CLOSE"
    CLOSED = "CLOSED"
    MIGHT_SWITCH_PROTOCOL = "MIGHT_SWITCH_PROTOCOL"
    SWITCHED_PROTOCOL = "SWITCHED_PROTOCOL"
    ERROR = "ERROR"


class ProtocolError(Exception):
    """The peer violated HTTP/1.1 (or a limit). `status_hint` is the status a
    server should answer with: 400, 414, 431, 501, 505. After it the codec is
    in the ERROR state and the connection must be closed."""

    def __init__(self, message: str, status_hint: int = 400) -> None:
        super().__init__(message)
        self.status_hint = status_hint


class FramingError(Exception):
    """The framing fields do not delimit a body (`framing.body_framing`).
    `status` is what a server answers a request with it: 400, or 501 for a
    coding other than chunked. Here, not in `framing`, so that its compiled
    and pure builds raise the one class."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class LocalProtocolError(Exception):
    """We tried to send something HTTP/1.1 does not allow (a bug in the caller)."""
