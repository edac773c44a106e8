"""Sans-IO HTTP/1.1: interchangeable codecs behind one interface.

`events` holds the events every codec produces and consumes, `codec` the
interface and the `Limits`. The codecs: `ServerCodec`/`ClientCodec`, the fast
path (llhttp through httptools for message heads, the message layer of
`edgeward.http1.fast` around it), and `H11ServerCodec`/`H11ClientCodec`, the
reference on h11. `forwarding` has the per-request header rewriting of a
proxy. Nothing here touches a socket or trio.

The fast-path modules are compiled with Cython when the package is built with
it (`_fast`, `_forwarding`) and otherwise run as the pure-Python source they
are compiled from; ``EDGEWARD_BACKEND=python`` forces the pure-Python build.
"""

from typing import TYPE_CHECKING

from edgeward.http1.builds import load
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

_fast = load("fast")
_forwarding = load("forwarding")
COMPILED: bool = all(
    build.compiled() for build in (_fast, _forwarding, load("framing"), load("event_classes"))
)
"""Whether the fast path runs compiled (else as pure Python): the codec and
every module it calls for each message."""

if TYPE_CHECKING:
    from edgeward.http1.fast import FastClientCodec as ClientCodec
    from edgeward.http1.fast import FastServerCodec as ServerCodec
    from edgeward.http1.forwarding import add_forwarding, connection_tokens, strip_hop_by_hop
else:
    ServerCodec = _fast.FastServerCodec  # parses requests, serialises responses
    ClientCodec = _fast.FastClientCodec  # serialises requests, parses responses
    strip_hop_by_hop = _forwarding.strip_hop_by_hop
    connection_tokens = _forwarding.connection_tokens
    add_forwarding = _forwarding.add_forwarding

__all__ = [
    "COMPILED",
    "DEFAULT_LIMITS",
    "NEED_DATA",
    "PAUSED",
    "ClientCodec",
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
    "ServerCodec",
    "State",
    "add_forwarding",
    "connection_tokens",
    "strip_hop_by_hop",
]
