"""`edgeward.http2.client.H2Client` without sockets: a real h2 server
connection on the other side of a byte pipe."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
from hpack import Encoder
from hyperframe.frame import DataFrame, HeadersFrame

from edgeward.http2.client import H2Client, H2ClientError
from edgeward.http2.events import (
    Body,
    ConnectionEnded,
    EndBody,
    Response,
    StreamReset,
    WindowOpened,
)

REQUEST = [
    (b":method", b"POST"),
    (b":scheme", b"http"),
    (b":authority", b"grpc.test"),
    (b":path", b"/pkg.Svc/Call"),
    (b"te", b"trailers"),
    (b"content-type", b"application/grpc"),
]


def pair(
    settings: dict[int, int] | None = None, client: H2Client | None = None
) -> tuple[H2Client, h2.connection.H2Connection]:
    client = client or H2Client()
    client.initiate()
    server = h2.connection.H2Connection(  # sends what it is given, checked or not
        h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
    )
    server.initiate_connection()
    if settings:
        server.update_settings(settings)
    for _ in range(2):  # (b"" to the client would be the end of the connection)
        server.receive_data(client.data_to_send())
        if data := server.data_to_send():
            client.receive_data(data)
    assert client.can_open
    return client, server


def request(client: H2Client, server: h2.connection.H2Connection, end: bool = True) -> int:
    stream_id = client.send_request(REQUEST, end_stream=end)
    events = server.receive_data(client.data_to_send())
    assert isinstance(events[0], h2.events.RequestReceived)
    assert events[0].headers == REQUEST  # pseudo-headers first, te: trailers kept
    return stream_id


def test_response_body_and_trailers() -> None:
    client, server = pair()
    sid = request(client, server)
    server.send_headers(sid, [(b":status", b"200"), (b"content-type", b"application/grpc")])
    server.send_data(sid, b"\x00\x00\x00\x00\x02hi")
    server.send_headers(sid, [(b"grpc-status", b"0"), (b"x-t", b"1")], end_stream=True)
    events = client.receive_data(server.data_to_send())
    assert events == [
        Response(sid, 200, [(b"content-type", b"application/grpc")], False),
        Body(sid, b"\x00\x00\x00\x00\x02hi", 7),
        EndBody(sid, [(b"grpc-status", b"0"), (b"x-t", b"1")]),
    ]


def test_a_trailers_only_response_is_one_event() -> None:
    client, server = pair()
    sid = request(client, server)
    server.send_headers(sid, [(b":status", b"200"), (b"grpc-status", b"5")], end_stream=True)
    events = client.receive_data(server.data_to_send())
    assert events == [Response(sid, 200, [(b"grpc-status", b"5")], True)]


def test_a_body_without_trailers_ends_with_an_empty_end() -> None:
    client, server = pair()
    sid = request(client, server)
    server.send_headers(sid, [(b":status", b"204")])
    server.end_stream(sid)
    events = client.receive_data(server.data_to_send())
    assert events[0] == Response(sid, 204, [], False)
    assert events[-1] == EndBody(sid, [])


def test_request_body_within_the_window_and_trailers() -> None:
    client, server = pair({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 10})
    sid = request(client, server, end=False)
    assert client.send_window(sid) == 10
    client.send_data(sid, b"0123456789")
    assert client.send_window(sid) == 0
    client.end_stream(sid, [(b"x-checksum", b"abc")])
    events = server.receive_data(client.data_to_send())
    assert [type(e) for e in events] == [
        h2.events.DataReceived,
        h2.events.TrailersReceived,
        h2.events.StreamEnded,
    ]
    assert events[1].headers == [(b"x-checksum", b"abc")]
    server.acknowledge_received_data(10, sid)
    assert WindowOpened(sid) in client.receive_data(server.data_to_send())


def test_received_body_is_acknowledged_only_when_consumed() -> None:
    client, server = pair(client=H2Client(stream_window=65535, connection_window=65535))
    sid = request(client, server)
    server.send_headers(sid, [(b":status", b"200")])
    for _ in range(4):
        server.send_data(sid, b"x" * 16000)
    body = [e for e in client.receive_data(server.data_to_send()) if isinstance(e, Body)]
    window = server.local_flow_control_window(sid)
    server.receive_data(client.data_to_send())
    assert server.local_flow_control_window(sid) == window  # nothing acknowledged yet
    for event in body:
        client.consumed(sid, event.flow_length)
    server.receive_data(client.data_to_send())
    assert server.local_flow_control_window(sid) > window


def test_a_malformed_response_resets_its_stream() -> None:
    client, server = pair()
    sid = request(client, server)
    server.send_headers(sid, [(b":status", b"200"), (b"connection", b"close")])
    assert client.receive_data(server.data_to_send()) == [
        StreamReset(sid, h2.errors.ErrorCodes.PROTOCOL_ERROR)
    ]
    events = server.receive_data(client.data_to_send())
    assert isinstance(events[0], h2.events.StreamReset)


def test_an_upstream_reset_is_a_stream_reset() -> None:
    client, server = pair()
    sid = request(client, server)
    server.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
    assert client.receive_data(server.data_to_send()) == [
        StreamReset(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
    ]


def test_streams_stay_under_the_upstreams_limit() -> None:
    client, server = pair({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1})
    sid = request(client, server)
    assert not client.can_open
    try:
        client.send_request(REQUEST, end_stream=True)
    except H2ClientError:
        pass
    else:
        raise AssertionError("a stream past the limit was opened")
    server.send_headers(sid, [(b":status", b"200")], end_stream=True)
    client.receive_data(server.data_to_send())
    client.stream_over(sid)
    assert client.can_open and client.streams == 0


def test_a_graceful_goaway_lets_the_streams_below_it_finish() -> None:
    """h2 itself stops every stream at a GOAWAY; RFC 9113 §6.8 lets those up
    to its last stream id finish, and those above were never processed."""
    client, server = pair()
    first = request(client, server)
    second = client.send_request(REQUEST, end_stream=True)  # in flight: the server misses it
    server.close_connection(last_stream_id=first)
    events = client.receive_data(server.data_to_send())
    assert events == [StreamReset(second, h2.errors.ErrorCodes.REFUSED_STREAM)]
    assert not client.can_open
    # (the server's h2 is closed now; a real server, nginx or gRPC, finishes stream 1)
    events = client.receive_data(_response_frames(first))
    assert events == [Response(first, 200, [], False), Body(first, b"ok", 2), EndBody(first, [])]


def _response_frames(stream_id: int) -> bytes:
    head = HeadersFrame(stream_id, Encoder().encode([(b":status", b"200")]), flags=["END_HEADERS"])
    return head.serialize() + DataFrame(stream_id, b"ok", flags=["END_STREAM"]).serialize()


def test_a_goaway_with_an_error_ends_the_connection() -> None:
    client, server = pair()
    sid = request(client, server)
    server.close_connection(error_code=h2.errors.ErrorCodes.INTERNAL_ERROR, last_stream_id=sid)
    (event,) = client.receive_data(server.data_to_send())
    assert event == ConnectionEnded(2, event.reason, sid)
    assert not client.can_open


def test_eof_ends_the_connection() -> None:
    client, _ = pair()
    assert client.receive_data(b"")[0].error_code == 0
    assert not client.can_open


def test_an_upstream_that_is_not_http2_is_found_at_its_first_bytes() -> None:
    """h2 would wait for the rest of a "frame" 4.7 MB long (the length of
    `HTT`); the server's preface must start with SETTINGS (RFC 9113 §3.4)."""
    client = H2Client()
    client.initiate()
    assert client.receive_data(b"HTTP/1") == []  # not 9 bytes yet
    (event,) = client.receive_data(b".1 400 Bad Request\r\n\r\n")
    assert isinstance(event, ConnectionEnded) and event.error_code != 0
    assert not client.can_open


def test_the_preface_may_arrive_byte_by_byte() -> None:
    client = H2Client()
    client.initiate()
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    events = []
    for byte in server.data_to_send():
        events += client.receive_data(bytes([byte]))
    assert not any(isinstance(e, ConnectionEnded) for e in events)
    assert client.can_open
