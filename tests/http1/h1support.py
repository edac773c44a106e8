"""Drivers and hypothesis strategies shared by the HTTP/1.1 codec tests.

A driver feeds a codec a byte stream in given pieces and records what came
out per message (head, concatenated body, trailers) and how the stream ended:
rejected (with its status hint), switched protocols, closed, or waiting.
Two codecs agree on a stream when their transcripts are equal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import strategies as st

from edgeward.http1 import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    Limits,
    ProtocolError,
    Request,
    Response,
    State,
)
from edgeward.http1 import fast as fast_py
from edgeward.http1.h11codec import H11ClientCodec, H11ServerCodec

CodecFactory = Callable[[Limits], Any]

SERVER_CODECS: dict[str, CodecFactory] = {
    "h11": H11ServerCodec,
    "fast-py": fast_py.FastServerCodec,
}
CLIENT_CODECS: dict[str, CodecFactory] = {
    "h11": H11ClientCodec,
    "fast-py": fast_py.FastClientCodec,
}
try:
    from edgeward.http1 import _fast as fast_c  # type: ignore[attr-defined]
except ImportError:  # built without Cython
    fast_c = None
else:
    SERVER_CODECS["fast-c"] = fast_c.FastServerCodec
    CLIENT_CODECS["fast-c"] = fast_c.FastClientCodec

SMALL_LIMITS = Limits(max_header_bytes=400, max_header_count=8, max_target_length=64)


def split(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False) if b > a]


def _event(event: Any) -> tuple[Any, ...]:
    if isinstance(event, Request):
        return ("request", event.method, event.target, event.http_version, event.headers)
    if isinstance(event, Response | InformationalResponse):
        return (
            type(event).__name__,
            event.status_code,
            event.http_version,
            event.reason,
            event.headers,
        )
    raise AssertionError(event)


class Transcript:
    """What a codec made of a stream: messages and the way it ended."""

    def __init__(self) -> None:
        self.messages: list[list[Any]] = []  # [head, body, trailers]
        self.end: tuple[Any, ...] = ()

    def record(self, event: Any) -> None:
        if isinstance(event, Data):
            self.messages[-1][1] += event.data
        elif isinstance(event, EndOfMessage):
            self.messages[-1][2] = event.headers
        else:
            self.messages.append([_event(event), b"", None])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Transcript) and (self.messages, self.end) == (
            other.messages,
            other.end,
        )

    def __repr__(self) -> str:
        return f"Transcript({self.messages!r}, end={self.end!r})"


def _rest(codec: Any, stream: list[bytes], at: int) -> tuple[bytes, bool]:
    """The bytes after the last message, once the whole stream is in."""
    for piece in stream[at + 1 :]:
        codec.receive_data(piece)
    return codec.trailing_data  # type: ignore[no-any-return]


def _respond(codec: Any, request: Request) -> None:
    """The server's deterministic answer: switch for CONNECT and Upgrade,
    else an empty 200."""
    if request.method == b"CONNECT":
        codec.send(Response(200, []))
    elif any(name == b"upgrade" for name, _ in request.headers) and codec.their_state in (
        State.MIGHT_SWITCH_PROTOCOL,
    ):
        codec.send(InformationalResponse(101, [(b"upgrade", b"x")]))
    else:
        codec.send(Response(200, [(b"content-length", b"0")]))
        codec.send(EndOfMessage())


def drive_server(codec: Any, pieces: Sequence[bytes], eof: bool) -> Transcript:
    """Feed a server codec `pieces`, answering each complete request."""
    out = Transcript()
    last: Request | None = None
    stream = [*pieces, b""] if eof else list(pieces)
    try:
        for at, piece in enumerate(stream):
            codec.receive_data(piece)
            while True:
                event = codec.next_event()
                if event is NEED_DATA:
                    break
                if event is PAUSED or isinstance(event, ConnectionClosed):
                    if codec.their_state in (State.DONE, State.MIGHT_SWITCH_PROTOCOL) and (
                        codec.our_state in (State.IDLE, State.SEND_RESPONSE)
                    ):
                        assert last is not None
                        _respond(codec, last)
                        if codec.our_state is State.DONE and codec.their_state is State.DONE:
                            codec.start_next_cycle()
                            continue
                    if isinstance(event, ConnectionClosed):
                        out.end = ("closed", codec.their_state.name)
                        return out
                    if event is PAUSED and codec.their_state is not State.DONE:
                        out.end = ("paused", codec.their_state.name, _rest(codec, stream, at))
                        return out
                    break
                out.record(event)
                if isinstance(event, Request):
                    last = event
                if isinstance(event, EndOfMessage) and codec.our_state is State.SEND_RESPONSE:
                    assert last is not None
                    _respond(codec, last)
                    if codec.our_state is State.DONE and codec.their_state is State.DONE:
                        codec.start_next_cycle()
    except ProtocolError as exc:
        out.end = ("rejected", exc.status_hint)
        return out
    out.end = ("waiting", codec.their_state.name)
    return out


def drive_client(
    codec: Any, requests: Sequence[Request], pieces: Sequence[bytes], eof: bool
) -> Transcript:
    """Send `requests` (each without a body) one exchange at a time and parse
    the responses from `pieces`."""
    out = Transcript()
    todo = list(requests)
    stream = [*pieces, b""] if eof else list(pieces)

    def next_request() -> None:
        codec.send(todo.pop(0))
        codec.send(EndOfMessage())

    try:
        next_request()
        for at, piece in enumerate(stream):
            codec.receive_data(piece)
            while True:
                event = codec.next_event()
                if event is NEED_DATA:
                    break
                if event is PAUSED or isinstance(event, ConnectionClosed):
                    if (
                        codec.our_state is State.DONE
                        and codec.their_state is State.DONE
                        and todo
                        and not isinstance(event, ConnectionClosed)
                    ):
                        codec.start_next_cycle()
                        next_request()
                        continue
                    data = _rest(codec, stream, at) if event is PAUSED else b""
                    out.end = ("stopped", codec.their_state.name, data)
                    return out
                out.record(event)
    except ProtocolError as exc:
        out.end = ("rejected", exc.status_hint)
        return out
    out.end = ("waiting", codec.their_state.name)
    return out


# --- strategies --------------------------------------------------------------------------

TCHAR = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
tokens = st.binary(min_size=1, max_size=12).map(
    lambda b: bytes(TCHAR[x % len(TCHAR)] for x in b)
)
field_values = st.one_of(
    st.sampled_from([b"", b"x", b"a b", b"text/html; q=0.9", b"\x80\xff", b"a\tb", b"gzip, br"]),
    st.binary(max_size=20).map(
        lambda b: bytes(0x21 + x % 0x5E for x in b)
    ),
)
paths = st.binary(max_size=24).map(lambda b: b"/" + bytes(0x21 + x % 0x5E for x in b))
extra_headers = st.lists(
    st.tuples(tokens, field_values).filter(
        lambda h: h[0].lower() not in (b"content-length", b"transfer-encoding", b"host", b"upgrade")
    ),
    max_size=4,
)
chunk_exts = st.sampled_from([b"", b";a", b";a=b", b';a="q \\" ;"', b" ", b"; a = b ;c", b";x=y\t"])


@st.composite
def bodies(draw: st.DrawFn) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Framing headers and the body bytes on the wire."""
    kind = draw(st.sampled_from(["none", "length", "chunked"]))
    payload = draw(st.binary(max_size=40))
    if kind == "none":
        return [], b""
    if kind == "length":
        return [(b"Content-Length", b"%d" % len(payload))], payload
    wire = b""
    rest = payload
    while rest:
        n = draw(st.integers(1, len(rest)))
        size = b"%x" % n if draw(st.booleans()) else b"%X" % n
        wire += size + draw(chunk_exts) + b"\r\n" + rest[:n] + b"\r\n"
        rest = rest[n:]
    wire += b"0" + draw(chunk_exts) + b"\r\n"
    for name, value in draw(extra_headers):
        wire += name + b": " + value + b"\r\n"
    wire += b"\r\n"
    return [(b"Transfer-Encoding", draw(st.sampled_from([b"chunked", b"Chunked"])))], wire


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """One request on the wire, mostly valid."""
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH"]))
    version = draw(st.sampled_from([b"1.1", b"1.1", b"1.1", b"1.0"]))
    target = draw(st.one_of(paths, st.just(b"http://example.com/x?y"), st.just(b"*")))
    headers = [(b"Host", b"example.com")] if version == b"1.1" or draw(st.booleans()) else []
    framing, body = draw(bodies())
    headers += framing + draw(extra_headers)
    extra = draw(
        st.sampled_from(
            [[], [(b"Connection", b"close")], [(b"Connection", b"keep-alive")], [(b"Expect", b"100-continue")]]
        )
    )
    headers += extra
    headers = draw(st.permutations(headers))
    ows = draw(st.sampled_from([b" ", b"", b"\t", b"  "]))
    head = b"%b %b HTTP/%b\r\n" % (method, target, version)
    head += b"".join(name + b":" + ows + value + b"\r\n" for name, value in headers)
    return head + b"\r\n" + body


NASTY = [b"\r", b"\n", b"\r\n", b"\x00", b" ", b"\t", b":", b"\x7f", b"\x80", b"x", b";", b"0", b"\r\n\r\n", b"\x01", b'"']


@st.composite
def mutated(draw: st.DrawFn, messages: st.SearchStrategy[bytes]) -> bytes:
    """A stream of messages with a few bytes inserted, replaced or removed."""
    data = b"".join(draw(st.lists(messages, min_size=1, max_size=3)))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data)))
        how = draw(st.sampled_from(["insert", "replace", "delete"]))
        nasty = draw(st.sampled_from(NASTY))
        if how == "insert":
            data = data[:at] + nasty + data[at:]
        elif how == "replace":
            data = data[:at] + nasty + data[at + len(nasty) :]
        else:
            data = data[:at] + data[at + draw(st.integers(1, 4)) :]
    return data


@st.composite
def responses(draw: st.DrawFn, method: bytes) -> bytes:
    """A response (perhaps after 1xx ones) to a request with `method`."""
    out = b""
    for _ in range(draw(st.integers(0, 2))):
        out += b"HTTP/1.1 100 Continue\r\n\r\n"
    status = draw(st.sampled_from([200, 200, 201, 204, 304, 404, 500, 101]))
    version = draw(st.sampled_from([b"1.1", b"1.1", b"1.0"]))
    reason = draw(st.sampled_from([b" OK", b" Not Found", b"", b" ", b" \x80weird\treason"]))
    framing, body = draw(bodies())
    if not framing and draw(st.booleans()):
        body = draw(st.binary(max_size=30))  # delimited by closing
    headers = framing + draw(extra_headers)
    headers += draw(st.sampled_from([[], [(b"Connection", b"close")], [(b"Upgrade", b"x")]]))
    out += b"HTTP/%b %d%b\r\n" % (version, status, reason)
    out += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return out + b"\r\n" + body
