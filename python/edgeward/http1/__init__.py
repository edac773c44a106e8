"""Sans-IO HTTP/1.1: interchangeable codecs behind one interface.

`events` holds the events every codec produces and consumes, `codec` the
interface and the `Limits`. The codecs: `h11codec` (the reference, on h11)
and the fast path (httptools' llhttp parser with a Cython message layer and
its pure-Python twin). Nothing here touches a socket or trio.
"""

from edgeward.http1.codec import DEFAULT_LIMITS, Codec, Limits
from edgeward.http1.events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Headers,
    InformationalResponse,
    LocalProtocolError,
    ProtocolError,
    Request,
    Response,
    State,
)
from edgeward.http1.h11codec import H11ClientCodec, H11ServerCodec

__all__ = [
    "DEFAULT_LIMITS",
    "NEED_DATA",
    "PAUSED",
    "Codec",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Event",
    "H11ClientCodec",
    "H11ServerCodec",
    "Headers",
    "InformationalResponse",
    "Limits",
    "LocalProtocolError",
    "ProtocolError",
    "Request",
    "Response",
    "State",
]
