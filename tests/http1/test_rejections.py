"""The rejection table of docs/http1.md, row by row, for every codec; and the
limits exactly at their boundaries."""

from __future__ import annotations

from typing import Any

import pytest
from h1support import CLIENT_CODECS, SERVER_CODECS

from edgeward.http1 import (
    NEED_DATA,
    EndOfMessage,
    Limits,
    ProtocolError,
    Request,
    State,
)

H = b"Host: a\r\n"
GET = b"GET / HTTP/1.1\r\n" + H  # then more field lines
POST = b"POST / HTTP/1.1\r\n" + H
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"

REQUESTS = {
    # request line
    "bad request line": (b"GET /\r\n" + H + b"\r\n", 400),
    "two spaces": (b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 400),
    "lower-case version": (b"GET / http/1.1\r\n" + H + b"\r\n", 400),
    "HTTP/2 preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    "HTTP/1.2": (b"GET / HTTP/1.2\r\n" + H + b"\r\n", 505),
    "HTTP/0.9": (b"GET / HTTP/0.9\r\n\r\n", 505),
    "unknown method": (b"BREW /pot HTTP/1.1\r\n" + H + b"\r\n", 501),
    "lower-case method": (b"get / HTTP/1.1\r\n" + H + b"\r\n", 501),
    "not a token method": (b"G(T / HTTP/1.1\r\n" + H + b"\r\n", 400),
    "target not origin-form": (b"GET index.html HTTP/1.1\r\n" + H + b"\r\n", 400),
    "asterisk outside OPTIONS": (b"GET * HTTP/1.1\r\n" + H + b"\r\n", 400),
    "CONNECT without port": (b"CONNECT example.com HTTP/1.1\r\n" + H + b"\r\n", 400),
    "control character in target": (b"GET /a\x01 HTTP/1.1\r\n" + H + b"\r\n", 400),
    "TLS on a plain port": (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 400),
    "leading empty line": (b"\r\nGET / HTTP/1.1\r\n" + H + b"\r\n", 400),
    # field lines
    "space before colon": (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    "obs-fold": (GET + b"X: a\r\n b\r\n\r\n", 400),
    "bare LF": (GET + b"X: a\n\r\n", 400),
    "bare LF line ends": (b"GET / HTTP/1.1\nHost: a\n\n", 400),
    "bare CR": (GET + b"X: a\rb\r\n\r\n", 400),
    "NUL in value": (GET + b"X: a\x00b\r\n\r\n", 400),
    "control character in value": (GET + b"X: a\x01b\r\n\r\n", 400),
    "DEL in value": (GET + b"X: a\x7fb\r\n\r\n", 400),
    "no colon": (GET + b"X a\r\n\r\n", 400),
    "empty name": (GET + b": a\r\n\r\n", 400),
    # framing
    "two Content-Lengths, equal": (POST + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400),
    "Content-Length list": (POST + b"Content-Length: 1, 1\r\n\r\nx", 400),
    "Content-Length sign": (POST + b"Content-Length: +1\r\n\r\nx", 400),
    "Content-Length too long": (POST + b"Content-Length: 1234567890123456789\r\n\r\n", 400),
    "Content-Length and Transfer-Encoding": (
        POST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
    ),
    "Transfer-Encoding and Content-Length": (
        POST + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        400,
    ),
    "unsupported coding": (POST + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    "chunked not alone": (POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
    "two Transfer-Encodings": (
        POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        501,
    ),
    "empty Transfer-Encoding": (
        POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n\r\n",
        400,
    ),
    "no Host": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "two Hosts": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    # chunked bodies
    "chunk size not hex": (CHUNKED + b"g\r\n", 400),
    "chunk size 0x": (CHUNKED + b"0x5\r\n", 400),
    "chunk size too big": (CHUNKED + b"8000000000000000\r\n", 400),
    "space before chunk extension": (CHUNKED + b"1 ;a\r\nx\r\n0\r\n\r\n", 400),
    "bad chunk extension": (CHUNKED + b"1;a\x01\r\nx\r\n0\r\n\r\n", 400),
    "chunk data overrun": (CHUNKED + b"1\r\nxy\r\n0\r\n\r\n", 400),
    "bare LF after chunk size": (CHUNKED + b"1\nx\r\n0\r\n\r\n", 400),
    "obs-fold in trailers": (CHUNKED + b"0\r\nA: b\r\n c\r\n\r\n", 400),
    "Content-Length in trailers": (CHUNKED + b"0\r\nContent-Length: 1\r\n\r\n", 400),
    "truncated body": (POST + b"Content-Length: 5\r\n\r\nabc", 400),
}


def read_all(codec: Any, data: bytes) -> list[Any]:
    codec.receive_data(data)
    codec.receive_data(b"")
    events = []
    while True:
        event = codec.next_event()
        events.append(event)
        if event is NEED_DATA or type(event).__name__ in ("ConnectionClosed", "_Sentinel"):
            return events
        if codec.their_state is State.DONE:
            return events


@pytest.mark.parametrize("codec", SERVER_CODECS)
@pytest.mark.parametrize("case", REQUESTS)
def test_request_rejected(codec: str, case: str) -> None:
    data, status = REQUESTS[case]
    server = SERVER_CODECS[codec](Limits())
    with pytest.raises(ProtocolError) as caught:
        read_all(server, data)
    assert caught.value.status_hint == status
    assert server.their_state is State.ERROR
    assert not server.keep_alive


LIMITS = Limits(max_header_bytes=64, max_header_count=3, max_target_length=10)


def head(target: bytes = b"/", fields: int = 1, pad: int = 0) -> bytes:
    """A request head of a chosen size: `fields` header lines, the first
    padded with `pad` bytes."""
    lines = [b"GET " + target + b" HTTP/1.1", b"Host: a" + b"x" * pad]
    lines += [b"X: y"] * (fields - 1)
    return b"\r\n".join(lines) + b"\r\n\r\n"


@pytest.mark.parametrize("codec", SERVER_CODECS)
def test_limits_at_their_boundaries(codec: str) -> None:
    def outcome(data: bytes) -> int:
        server = SERVER_CODECS[codec](LIMITS)
        try:
            read_all(server, data)
        except ProtocolError as exc:
            return exc.status_hint
        return 0

    exact = head(pad=64 - len(head()))
    assert len(exact) == 64
    assert outcome(exact) == 0
    assert outcome(head(pad=65 - len(head()))) == 431
    assert outcome(head(fields=3)) == 0
    assert outcome(head(fields=4)) == 431
    assert outcome(head(target=b"/" * 10)) == 0
    assert outcome(head(target=b"/" * 11)) == 414


@pytest.mark.parametrize("codec", SERVER_CODECS)
def test_chunk_lines_are_not_held_to_the_head_limit(codec: str) -> None:
    server = SERVER_CODECS[codec](LIMITS)
    body = b"1;" + b"a" * 1000 + b"\r\nx\r\n0\r\n\r\n"
    events = read_all(server, CHUNKED + body)
    assert events[-1] == EndOfMessage()
    server = SERVER_CODECS[codec](LIMITS)
    with pytest.raises(ProtocolError) as caught:
        read_all(server, CHUNKED + b"1;" + b"a" * 5000 + b"\r\n")
    assert caught.value.status_hint == 400


@pytest.mark.parametrize("codec", SERVER_CODECS)
def test_oversized_head_refused_before_it_ends(codec: str) -> None:
    server = SERVER_CODECS[codec](LIMITS)
    server.receive_data(b"GET / HTTP/1.1\r\nHost: " + b"a" * 40)
    assert server.next_event() is NEED_DATA
    server.receive_data(b"a" * 20)
    with pytest.raises(ProtocolError) as caught:
        server.next_event()
    assert caught.value.status_hint == 431


RESPONSES = {
    "bad status line": b"HTTP/1.1 2000 OK\r\n\r\n",
    "status below 100": b"HTTP/1.1 099 X\r\n\r\n",
    "no version": b"200 OK\r\n\r\n",
    "bare LF": b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
    "101 without an Upgrade": b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    "two Content-Lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "truncated chunked body": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
}


@pytest.mark.parametrize("codec", CLIENT_CODECS)
@pytest.mark.parametrize("case", RESPONSES)
def test_response_rejected(codec: str, case: str) -> None:
    client = CLIENT_CODECS[codec](Limits())
    client.send(Request(b"GET", b"/", [(b"host", b"a")]))
    client.send(EndOfMessage())
    with pytest.raises(ProtocolError) as caught:
        read_all(client, RESPONSES[case])
    assert caught.value.status_hint in (400, 501, 505)
