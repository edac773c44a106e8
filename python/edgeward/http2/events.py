"""Events of HTTP/2 streams, in the shape of the HTTP/1 events (a request
head, `Data`-like body chunks, an end with trailers), plus a stream id.

Header names are lower-case bytes, values bytes; pseudo-headers are lifted
into fields so the proxy sees the same `RequestHead` either way."""

from __future__ import annotations

from dataclasses import dataclass, field

Headers = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class Request:
    stream_id: int
    method: bytes
    target: bytes  # :path; CONNECT: the authority (host:port), as in HTTP/1.1
    authority: bytes  # :authority, else Host
    scheme: bytes  # the connection's (`:scheme` must be the same)
    headers: Headers  # regular headers; cookies joined into one
    end_stream: bool  # no body follows


@dataclass(slots=True)
class Response:
    """A final response head from an upstream (`H2Client`); 1xx are dropped.
    `end_stream`: no body follows (a trailers-only gRPC answer, a 204)."""

    stream_id: int
    status: int
    headers: Headers  # regular headers
    end_stream: bool


@dataclass(slots=True)
class Body:
    stream_id: int
    data: bytes
    flow_length: int  # bytes to acknowledge once consumed (includes padding)


@dataclass(slots=True)
class EndBody:
    stream_id: int
    trailers: Headers = field(default_factory=list)


@dataclass(slots=True)
class StreamReset:
    """The peer reset the stream (or we refused it); stop working on it."""

    stream_id: int
    error_code: int


@dataclass(slots=True)
class WindowOpened:
    """The peer granted send window: on one stream, or (0) the connection."""

    stream_id: int


@dataclass(slots=True)
class ConnectionEnded:
    """The connection is over: the peer sent GOAWAY, broke the protocol,
    or tripped a limit (we sent GOAWAY). Flush, then close. From an
    upstream (`H2Client`), streams above `last_stream_id` were not
    processed and may be retried elsewhere."""

    error_code: int
    reason: str = ""
    last_stream_id: int = 0


StreamEvent = Request | Body | EndBody | StreamReset | WindowOpened | ConnectionEnded
ClientEvent = Response | Body | EndBody | StreamReset | WindowOpened | ConnectionEnded
