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
    """The client reset the stream (or we refused it); stop working on it."""

    stream_id: int
    error_code: int


@dataclass(slots=True)
class WindowOpened:
    """The client granted send window: on one stream, or (0) the connection."""

    stream_id: int


@dataclass(slots=True)
class ConnectionEnded:
    """The connection is over: the client sent GOAWAY, broke the protocol,
    or tripped a limit (we sent GOAWAY). Flush, then close."""

    error_code: int
    reason: str = ""


StreamEvent = Request | Body | EndBody | StreamReset | WindowOpened | ConnectionEnded
