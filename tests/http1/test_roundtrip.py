"""What one codec sends, every codec (and bare h11) parses back unchanged."""

from __future__ import annotations

from typing import Any

import h11
import pytest
from h1support import CLIENT_CODECS, SERVER_CODECS, Transcript, drive_server, tokens
from hypothesis import given
from hypothesis import strategies as st

from edgeward.http1 import (
    NEED_DATA,
    Data,
    EndOfMessage,
    InformationalResponse,
    Limits,
    LocalProtocolError,
    Request,
    Response,
    State,
)

names = tokens.map(bytes.lower).filter(
    lambda n: (
        n not in (b"host", b"content-length", b"transfer-encoding", b"connection", b"upgrade")
        and n not in (b"expect", b"te", b"trailer")
    )
)
values = st.binary(max_size=16).map(
    lambda b: bytes(0x21 + x % 0x5E if x < 200 else 0x80 + x % 0x80 for x in b)
)
headers = st.lists(st.tuples(names, values), max_size=5)
bodies = st.lists(st.binary(min_size=0, max_size=30), max_size=4)


@st.composite
def request_events(draw: st.DrawFn) -> tuple[Request, list[bytes], list[tuple[bytes, bytes]]]:
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH"]))
    target = b"/" + draw(st.binary(max_size=16).map(lambda b: bytes(0x21 + x % 0x5E for x in b)))
    chunks = draw(bodies)
    fields = [(b"host", b"example.com"), *draw(headers)]
    trailers: list[tuple[bytes, bytes]] = []
    if draw(st.booleans()):
        fields.append((b"transfer-encoding", b"chunked"))
        trailers = draw(headers)
    else:
        fields.append((b"content-length", b"%d" % sum(map(len, chunks))))
    return Request(method, target, fields), chunks, trailers


def send_request(codec: Any, request: Request, chunks: list[bytes], trailers: Any) -> bytes:
    out = codec.send(request)
    for chunk in chunks:
        out += codec.send(Data(chunk))
    return out + codec.send(EndOfMessage(trailers))


def parse_with_h11(role: Any, data: bytes, method: bytes = b"GET") -> list[Any]:
    conn = h11.Connection(role)
    if role is h11.CLIENT:
        conn.send(h11.Request(method=method, target="/", headers=[("Host", "a")]))
        conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    conn.receive_data(b"")
    out: list[Any] = []
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA or event is h11.PAUSED:
            return out
        if type(event) is h11.Data:
            body += event.data
        elif type(event) is h11.EndOfMessage:
            out.append((body, list(event.headers)))
            return out
        else:
            out.append(list(event.headers))


@given(request_events())
def test_requests_roundtrip(case: Any) -> None:
    request, chunks, trailers = case
    body = b"".join(chunks)
    sent = {
        name: send_request(make(Limits()), request, chunks, trailers)
        for name, make in CLIENT_CODECS.items()
    }
    if "fast-c" in sent:
        assert sent["fast-c"] == sent["fast-py"]
    for wire in sent.values():
        for make in SERVER_CODECS.values():
            transcript = drive_server(make(Limits()), [wire], eof=False)
            [[head, got_body, got_trailers]] = transcript.messages
            assert head == ("request", request.method, request.target, b"1.1", request.headers)
            assert (got_body, got_trailers) == (body, trailers)
        [got_headers, (got_body, got_trailers)] = parse_with_h11(h11.SERVER, wire)
        assert got_headers == request.headers
        assert (got_body, got_trailers) == (body, trailers)


RESPONSE_FRAMINGS = ["length", "chunked", "none"]


@given(
    st.sampled_from([b"1.1", b"1.0"]),
    st.sampled_from([b"GET", b"HEAD"]),
    st.sampled_from([200, 201, 204, 304, 404, 500]),
    st.sampled_from(RESPONSE_FRAMINGS),
    headers,
    bodies,
    headers,
)
def test_responses_roundtrip(  # noqa: PLR0917 - one argument per strategy
    version: bytes,
    method: bytes,
    status: int,
    framing: str,
    fields: list[tuple[bytes, bytes]],
    chunks: list[bytes],
    trailers: list[tuple[bytes, bytes]],
) -> None:
    """A server codec answers an HTTP/`version` `method` request; the bytes
    parse back as the same response, framed as h11 would have framed it."""
    no_body = status in (204, 304) or method == b"HEAD"
    if no_body:
        chunks = []
    body = b"".join(chunks)
    fields = list(fields)
    if framing == "length":
        fields.append((b"content-length", b"%d" % len(body)))
    elif framing == "chunked" and version == b"1.1":
        fields.append((b"transfer-encoding", b"chunked"))
    chunked_out = not no_body and framing != "length" and version == b"1.1"
    if not chunked_out:
        trailers = []
    wires = []
    for make in SERVER_CODECS.values():
        server = make(Limits())
        server.receive_data(b"%b / HTTP/%b\r\nHost: a\r\n\r\n" % (method, version))
        server.next_event()
        server.next_event()
        wire = server.send(Response(status, fields))
        for chunk in chunks:
            wire += server.send(Data(chunk))
        wire += server.send(EndOfMessage(trailers))
        wires.append(wire)
        delimited = chunked_out or framing == "length" or no_body
        assert server.keep_alive == (version == b"1.1" and delimited)
    for wire in wires:
        [got_headers, (got_body, got_trailers)] = parse_with_h11(h11.CLIENT, wire, method)
        assert (got_body, got_trailers) == (body, trailers)
        sent = [h for h in got_headers if h[0] not in (b"transfer-encoding", b"connection")]
        assert sent == [h for h in fields if h[0] not in (b"transfer-encoding",)]


@pytest.mark.parametrize("codec", CLIENT_CODECS)
def test_client_send_rejects_bad_requests(codec: str) -> None:
    bad = [
        Request(b"GET", b"/", []),  # no Host
        Request(b"GET", b"/ x", [(b"host", b"a")]),
        Request(b"G T", b"/", [(b"host", b"a")]),
        Request(b"GET", b"/", [(b"host", b"a")], http_version=b"1.0"),
        Request(b"GET", b"/", [(b"host", b"a"), (b"x", b"a\r\nInjected: 1")]),
        Request(b"GET", b"/", [(b"host", b"a"), (b"x y", b"1")]),
        Request(b"GET", b"/", [(b"host", b"a"), (b"x", b"a\x00")]),
        Request(b"GET", b"/", [(b"host", b"a"), (b"transfer-encoding", b"gzip")]),
    ]
    for request in bad:
        client = CLIENT_CODECS[codec](Limits())
        with pytest.raises(LocalProtocolError):
            client.send(request)
        assert client.our_state is State.ERROR


@pytest.mark.parametrize("codec", CLIENT_CODECS)
def test_content_length_is_enforced_on_send(codec: str) -> None:
    client = CLIENT_CODECS[codec](Limits())
    client.send(Request(b"POST", b"/", [(b"host", b"a"), (b"content-length", b"3")]))
    with pytest.raises(LocalProtocolError):
        client.send(Data(b"four"))
    client = CLIENT_CODECS[codec](Limits())
    client.send(Request(b"POST", b"/", [(b"host", b"a"), (b"content-length", b"3")]))
    client.send(Data(b"ab"))
    with pytest.raises(LocalProtocolError):
        client.send(EndOfMessage())


@pytest.mark.parametrize("codec", SERVER_CODECS)
def test_keep_alive_pipelining_and_close(codec: str) -> None:
    server = SERVER_CODECS[codec](Limits())
    server.receive_data(
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        b"GET /3 HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    for target in (b"/1", b"/2"):
        request = server.next_event()
        assert isinstance(request, Request)
        assert request.target == target
        assert isinstance(server.next_event(), EndOfMessage)
        server.send(Response(200, [(b"content-length", b"0")]))
        server.send(EndOfMessage())
        if server.keep_alive:
            server.start_next_cycle()
    assert server.our_state is State.MUST_CLOSE
    assert type(server.next_event()).__name__ == "_Sentinel"  # PAUSED: /3 is never read


@pytest.mark.parametrize("codec", SERVER_CODECS)
def test_expect_100_continue(codec: str) -> None:
    server = SERVER_CODECS[codec](Limits())
    server.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    )
    assert isinstance(server.next_event(), Request)
    assert server.they_are_waiting_for_100_continue
    assert server.next_event() is NEED_DATA
    assert server.send(InformationalResponse(100, [])).startswith(b"HTTP/1.1 100 ")
    assert not server.they_are_waiting_for_100_continue
    server.receive_data(b"ok")
    assert server.next_event() == Data(b"ok")


@pytest.mark.parametrize("codec", SERVER_CODECS)
def test_upgrade_hands_over_the_rest(codec: str) -> None:
    server = SERVER_CODECS[codec](Limits())
    server.receive_data(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05"
    )
    assert isinstance(server.next_event(), Request)
    assert isinstance(server.next_event(), EndOfMessage)
    assert server.their_state is State.MIGHT_SWITCH_PROTOCOL
    server.send(InformationalResponse(101, [(b"upgrade", b"websocket")]))
    assert server.our_state is State.SWITCHED_PROTOCOL
    assert server.their_state is State.SWITCHED_PROTOCOL
    assert server.trailing_data == (b"\x81\x05", False)


@pytest.mark.parametrize("codec", CLIENT_CODECS)
def test_connect_tunnel(codec: str) -> None:
    client = CLIENT_CODECS[codec](Limits())
    client.send(Request(b"CONNECT", b"example.com:443", [(b"host", b"example.com:443")]))
    client.send(EndOfMessage())
    client.receive_data(b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03")
    response = client.next_event()
    assert isinstance(response, Response)
    assert response.status_code == 200
    assert client.their_state is State.SWITCHED_PROTOCOL
    assert client.trailing_data == (b"\x16\x03", False)


@pytest.mark.parametrize("codec", CLIENT_CODECS)
def test_head_and_304_responses_have_no_body(codec: str) -> None:
    client = CLIENT_CODECS[codec](Limits())
    for method, status in ((b"HEAD", 200), (b"GET", 304), (b"GET", 204)):
        client.send(Request(method, b"/", [(b"host", b"a")]))
        client.send(EndOfMessage())
        client.receive_data(b"HTTP/1.1 %d X\r\nContent-Length: 10\r\n\r\n" % status)
        assert isinstance(client.next_event(), Response)
        assert isinstance(client.next_event(), EndOfMessage)
        client.start_next_cycle()


def test_transcript_equality_is_meaningful() -> None:
    a, b = Transcript(), Transcript()
    assert a == b
    b.end = ("rejected", 400)
    assert a != b


INJECTED = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhacked"


@pytest.mark.parametrize("codec", CLIENT_CODECS)
@pytest.mark.parametrize(
    ("method", "response"),
    [
        (b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + INJECTED),
        (b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),  # a body to HEAD
        (b"GET", b"HTTP/1.1 204 No Content\r\n\r\n" + INJECTED),
        (b"GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + INJECTED),
    ],
)
def test_bytes_after_a_complete_response_end_keep_alive(
    codec: str, method: bytes, response: bytes
) -> None:
    """Pool poisoning: whatever follows a complete response must never be
    read as the answer to the next request."""
    client = CLIENT_CODECS[codec](Limits())
    client.send(Request(method, b"/", [(b"host", b"a")]))
    client.send(EndOfMessage())
    client.receive_data(response)
    assert isinstance(client.next_event(), Response)
    event = client.next_event()
    while isinstance(event, Data):
        event = client.next_event()
    assert isinstance(event, EndOfMessage)
    assert not client.keep_alive
    assert client.their_state is State.MUST_CLOSE
    assert client.our_state is State.MUST_CLOSE
    with pytest.raises(LocalProtocolError):
        client.start_next_cycle()


@pytest.mark.parametrize("codec", CLIENT_CODECS)
def test_bytes_arriving_later_end_keep_alive(codec: str) -> None:
    """The injected bytes come in a later read, before the next request."""
    client = CLIENT_CODECS[codec](Limits())
    client.send(Request(b"GET", b"/", [(b"host", b"a")]))
    client.send(EndOfMessage())
    client.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert isinstance(client.next_event(), Response)
    assert client.next_event() == Data(b"ok")
    assert isinstance(client.next_event(), EndOfMessage)
    assert client.keep_alive
    client.receive_data(INJECTED)
    assert not client.keep_alive
    assert client.their_state is State.MUST_CLOSE
    with pytest.raises(LocalProtocolError):
        client.start_next_cycle()


@pytest.mark.parametrize("codec", CLIENT_CODECS)
def test_a_clean_response_keeps_the_connection(codec: str) -> None:
    client = CLIENT_CODECS[codec](Limits())
    for _ in range(2):
        client.send(Request(b"GET", b"/", [(b"host", b"a")]))
        client.send(EndOfMessage())
        client.receive_data(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        )
        assert isinstance(client.next_event(), InformationalResponse)
        assert isinstance(client.next_event(), Response)
        assert client.next_event() == Data(b"ok")
        assert isinstance(client.next_event(), EndOfMessage)
        assert client.keep_alive
        client.start_next_cycle()
