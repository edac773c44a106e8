"""`edgeward.http2.H2Server` without sockets: a real h2 client connection on
the other side of a byte pipe."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest
from hpack import NeverIndexedHeaderTuple
from tests.http2.twin import implementations

from edgeward.http2 import Body, ConnectionEnded, EndBody, H2Limits, H2Server, Request, StreamReset

# every test on the chosen build, and again on both side by side (tests/http2/twin.py)
implementation = implementations(__name__)


def pair(limits: H2Limits | None = None) -> tuple[h2.connection.H2Connection, H2Server]:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    server = H2Server(limits or H2Limits(), scheme=b"https")  # as on TLS
    server.initiate()
    server.receive_data(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send(), 0.0)
    return client, server


HEADERS = [
    (":method", "POST"),
    (":path", "/up?x=1"),
    (":authority", "app.test"),
    (":scheme", "https"),
]


def test_request_head_in_the_http1_shape() -> None:
    client, server = pair()
    client.send_headers(1, [*HEADERS, ("cookie", "a=1"), ("x-one", "1"), ("cookie", "b=2")])
    (event,) = server.receive_data(client.data_to_send(), 0.0)
    assert isinstance(event, Request)
    assert (event.method, event.target, event.authority, event.scheme) == (
        b"POST",
        b"/up?x=1",
        b"app.test",
        b"https",
    )
    assert event.headers == [(b"x-one", b"1"), (b"cookie", b"a=1; b=2")]  # RFC 9113 §8.2.3
    assert not event.end_stream


def test_body_is_acknowledged_only_when_consumed() -> None:
    client, server = pair(H2Limits(stream_window=65535, connection_window=65535))
    client.send_headers(1, HEADERS)
    for _ in range(5):
        client.send_data(1, b"x" * 12000)
    client.end_stream(1)
    events = server.receive_data(client.data_to_send(), 0.0)
    body = [e for e in events if isinstance(e, Body)]
    assert sum(len(e.data) for e in body) == 60000
    assert isinstance(events[-1], EndBody)
    client.receive_data(server.data_to_send())
    assert client.local_flow_control_window(1) < 10000  # nothing acknowledged yet
    for e in body:
        server.consumed(1, e.flow_length)
    updates = client.receive_data(server.data_to_send())
    assert any(isinstance(u, h2.events.WindowUpdated) for u in updates)


def test_response_round_trip_and_window() -> None:
    client, server = pair()
    client.send_headers(1, HEADERS, end_stream=True)
    server.receive_data(client.data_to_send(), 0.0)
    server.send_headers(
        1, 200, [(b"content-type", b"text/plain"), (b"edgeward-request-id", b"abc")]
    )
    assert server.send_window(1) == 16384  # min(window, max frame size)
    server.send_data(1, b"hello")
    server.end_stream(1, [])
    events = client.receive_data(server.data_to_send())
    response = next(e for e in events if isinstance(e, h2.events.ResponseReceived))
    assert dict(response.headers)[b":status"] == b"200"
    assert dict(response.headers)[b"edgeward-request-id"] == b"abc"
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)


def test_a_response_that_is_only_a_head_is_one_headers_frame() -> None:
    """`send_headers(end_stream=True)`: a trailers-only gRPC answer (or a
    204) ends the stream on its HEADERS frame, and the stream counts as done."""
    client, server = pair(H2Limits(max_concurrent_streams=1))
    client.send_headers(1, HEADERS, end_stream=True)
    server.receive_data(client.data_to_send(), 0.0)
    server.send_headers(1, 200, [(b"grpc-status", b"7"), (b"grpc-message", b"no")], True)
    events = client.receive_data(server.data_to_send())
    assert [type(e) for e in events] == [h2.events.ResponseReceived, h2.events.StreamEnded]
    assert (b"grpc-status", b"7") in events[0].headers
    assert events[0].stream_ended is events[1]  # on the HEADERS frame itself
    client.send_headers(3, HEADERS, end_stream=True)  # the one stream allowed is free again
    (event,) = server.receive_data(client.data_to_send(), 0.0)
    assert isinstance(event, Request) and event.stream_id == 3


def test_rapid_resets_end_the_connection() -> None:
    client, server = pair(H2Limits(max_resets=5, reset_window=10))
    events = []
    for i in range(8):
        sid = 1 + 2 * i
        client.send_headers(sid, HEADERS, end_stream=True)
        client.reset_stream(sid)
        events += server.receive_data(client.data_to_send(), float(i) * 0.01)
    assert sum(isinstance(e, StreamReset) for e in events) == 5
    assert isinstance(events[-1], ConnectionEnded)
    assert events[-1].error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    goaway = [
        e
        for e in client.receive_data(server.data_to_send())
        if isinstance(e, h2.events.ConnectionTerminated)
    ]
    assert goaway[0].error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM


def test_resets_spread_over_time_are_allowed() -> None:
    client, server = pair(H2Limits(max_resets=5, reset_window=1))
    for i in range(20):
        sid = 1 + 2 * i
        client.send_headers(sid, HEADERS, end_stream=True)
        client.reset_stream(sid)
        events = server.receive_data(client.data_to_send(), float(i))  # one per second
        assert not any(isinstance(e, ConnectionEnded) for e in events)


def test_graceful_goaway_lets_open_streams_finish() -> None:
    client, server = pair()
    client.send_headers(1, HEADERS, end_stream=True)
    server.receive_data(client.data_to_send(), 0.0)
    server.goaway()
    server.send_headers(1, 200, [])
    server.end_stream(1, [])
    data = server.data_to_send()
    assert data  # h2's own close_connection() would have refused the response


def test_protocol_violation_ends_the_connection() -> None:
    _, server = pair()
    data_on_stream_0 = b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x"
    events = server.receive_data(data_on_stream_0, 0.0)
    assert isinstance(events[-1], ConnectionEnded)


def test_settings_advertise_the_limits() -> None:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    server = H2Server(H2Limits(max_concurrent_streams=7, max_header_list_size=9999))
    server.initiate()
    events = client.receive_data(server.data_to_send())
    changed = next(
        e for e in events if isinstance(e, h2.events.RemoteSettingsChanged)
    ).changed_settings
    assert changed[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS].new_value == 7
    assert changed[h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE].new_value == 9999


def _raw_client() -> tuple[h2.connection.H2Connection, H2Server]:
    """A client that sends whatever it is given, as a broken or hostile peer would."""
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(
            client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False
        )
    )
    client.initiate_connection()
    server = H2Server(H2Limits())
    server.initiate()
    server.receive_data(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send(), 0.0)
    return client, server


BASE = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"a.test")]


@pytest.mark.parametrize(
    "fields",
    [
        [*BASE, (b"X-Upper", b"1")],
        [*BASE, (b"x-cr", b"a\r\nx-injected: 1")],
        [*BASE, (b"x-nul", b"a\x00b")],
        [*BASE, (b"x-space", b" padded")],
        [*BASE, (b"bad name", b"1")],
        [*BASE, (b"x:colon", b"1")],
        [*BASE, (b"connection", b"close")],
        [*BASE, (b"transfer-encoding", b"chunked")],
        [*BASE, (b"te", b"gzip")],
        [*BASE, (b"host", b"other.test")],
        [*BASE, (b"host", b"a.test"), (b"host", b"a.test")],
        [*BASE[:3]],  # no authority, no host
        [BASE[0], BASE[2], BASE[3]],  # no :path
        [BASE[0], (b":path", b""), BASE[2], BASE[3]],
        [*BASE, (b":method", b"GET")],
        [BASE[0], (b"x-early", b"1"), *BASE[1:]],
        [*BASE, (b":status", b"200")],
        [(b":method", b"GET"), (b":protocol", b"websocket"), *BASE[1:]],
        [(b":method", b"CONNECT"), (b":authority", b"a.test:443"), (b":path", b"/")],
    ],
)
def test_malformed_request_resets_only_its_stream(fields: list[tuple[bytes, bytes]]) -> None:
    client, server = _raw_client()
    client.send_headers(1, fields, end_stream=True)
    client.send_headers(3, BASE, end_stream=True)
    events = server.receive_data(client.data_to_send(), 0.0)
    assert [(type(e), e.stream_id) for e in events] == [(Request, 3)]  # type: ignore[union-attr]
    assert isinstance(events[0], Request) and events[0].end_stream
    resets = [
        e
        for e in client.receive_data(server.data_to_send())
        if isinstance(e, h2.events.StreamReset)
    ]
    assert [(r.stream_id, r.error_code) for r in resets] == [
        (1, h2.errors.ErrorCodes.PROTOCOL_ERROR)
    ]


def test_valid_variants_are_accepted() -> None:
    client, server = _raw_client()
    connect = [(b":method", b"CONNECT"), (b":authority", b"a.test:443")]
    client.send_headers(1, connect, end_stream=True)
    host_only = [
        (b":method", b"GET"),
        (b":path", b"/"),
        (b":scheme", b"http"),
        (b"host", b"h.test"),
    ]
    client.send_headers(3, [*host_only, (b"te", b"Trailers"), (b"x-empty", b"")], end_stream=True)
    events = server.receive_data(client.data_to_send(), 0.0)
    assert [type(e) for e in events] == [Request, Request]
    assert isinstance(events[1], Request)
    assert events[1].authority == b"h.test"
    assert events[1].headers == [(b"host", b"h.test"), (b"te", b"Trailers"), (b"x-empty", b"")]


def test_malformed_trailers_reset_the_stream() -> None:
    client, server = _raw_client()
    client.send_headers(1, [(b":method", b"POST"), *BASE[1:]])
    client.send_data(1, b"body")
    client.send_headers(1, [(b":path", b"/again")], end_stream=True)
    events = server.receive_data(client.data_to_send(), 0.0)
    assert [type(e) for e in events] == [Request, Body, StreamReset]


def test_trailers_arrive_with_the_end() -> None:
    client, server = _raw_client()
    client.send_headers(1, [(b":method", b"POST"), *BASE[1:]])
    client.send_headers(1, [(b"x-checksum", b"abc")], end_stream=True)
    events = server.receive_data(client.data_to_send(), 0.0)
    assert isinstance(events[-1], EndBody)
    assert events[-1].trailers == [(b"x-checksum", b"abc")]


def test_response_headers_are_normalised_and_never_indexed_for_credentials() -> None:
    client, server = pair()
    client.send_headers(1, HEADERS, end_stream=True)
    server.receive_data(client.data_to_send(), 0.0)
    headers = [(b"X-Mixed", b" v "), (b"set-cookie", b"s=1"), (b"content-type", b"text/plain")]
    server.send_headers(1, 404, headers)
    server.end_stream(1, [])
    events = client.receive_data(server.data_to_send())
    response = next(e for e in events if isinstance(e, h2.events.ResponseReceived))
    assert list(response.headers) == [
        (b":status", b"404"),
        (b"x-mixed", b"v"),
        (b"set-cookie", b"s=1"),
        (b"content-type", b"text/plain"),
    ]
    assert isinstance(response.headers[2], NeverIndexedHeaderTuple)


def test_a_finished_stream_returns_what_it_did_not_acknowledge() -> None:
    """The driver's accounting: body bytes queued on a stream, and the chunk
    handed to the exchange but not yet acknowledged, go back to the
    connection window when the stream ends (reset or not)."""
    from types import SimpleNamespace

    from edgeward.proxy.http2 import H2Stream

    client, server = pair(H2Limits(stream_window=65535, connection_window=65535))
    client.send_headers(1, HEADERS)
    for _ in range(5):
        client.send_data(1, b"x" * 10000)
    events = server.receive_data(client.data_to_send(), 0.0)
    stream = H2Stream(SimpleNamespace(h2=server), 1)  # type: ignore[arg-type]
    for e in events:
        if isinstance(e, Body):
            stream.chunks.append((e.data, e.flow_length))
    stream._pending_ack = stream.chunks.popleft()[1]  # the exchange took one
    stream.reset = True
    client.receive_data(server.data_to_send())
    assert client.outbound_flow_control_window == 65535 - 50000
    stream.release_window()
    client.receive_data(server.data_to_send())
    assert client.outbound_flow_control_window == 65535  # all 50000 bytes returned


def test_malformed_requests_count_towards_the_reset_limit() -> None:
    """Streams we reset because the client sent nonsense count like the
    client's own resets: no way around the rapid-reset limit."""
    client, server = _raw_client()
    server.limits = H2Limits(max_resets=5)
    events = []
    for i in range(8):
        client.send_headers(1 + 2 * i, [*BASE, (b"X-Upper", b"1")], end_stream=True)
        events += server.receive_data(client.data_to_send(), 0.01 * i)
    assert isinstance(events[-1], ConnectionEnded)
    assert events[-1].error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
