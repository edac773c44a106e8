"""`H2Server.finish_response`: the rest of a response in one call (the proxy's
small responses: head, body and end at once). It must queue exactly the
frames of the calls it replaces (`send_headers`, then `end_stream`), send
nothing when the body does not fit the send window (the caller then sends
the head alone and waits for window), and agree between the native server
and the reference (`Twin`)."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.http2.twin import Twin

from edgeward.http2 import NATIVE, H2Limits, Request
from edgeward.http2.connection import H2Server as Reference

pytestmark = pytest.mark.skipif(not NATIVE, reason="the native H2Server is not built")

_GET = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"a")]
_HEADERS = [(b"content-type", b"text/plain"), (b"server", b"nginx"), (b"x-id", b"1")]
_LIMITS = H2Limits(stream_window=65535, connection_window=65535)


def _open(server: Twin | Reference, window: int) -> h2.connection.H2Connection:
    """A client with one request open on stream 1, which lets the server
    send `window` bytes on it."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
    client.send_headers(1, _GET, end_stream=True)
    server.initiate()
    events = server.receive_data(client.data_to_send(), 0.0)
    assert any(isinstance(e, Request) for e in events)
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send(), 0.0)  # the client's SETTINGS ACK
    return client


def _received(client: h2.connection.H2Connection, data: bytes) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for event in client.receive_data(data):
        if isinstance(event, h2.events.ResponseReceived):
            out.append(("head", list(event.headers or [])))
        elif isinstance(event, h2.events.DataReceived):
            out.append(("data", event.data))
        elif isinstance(event, h2.events.TrailersReceived):
            out.append(("trailers", list(event.headers or [])))
        elif isinstance(event, h2.events.StreamEnded):
            out.append(("end",))
    return out


@settings(max_examples=120, deadline=None)
@given(
    head=st.booleans(),
    size=st.sampled_from([0, 1, 20, 999, 1000, 1001, 16384, 16385]),
    window=st.sampled_from([0, 10, 1000, 65535]),
    trailers=st.sampled_from([[], [(b"grpc-status", b"0")]]),
)
def test_one_call_queues_what_the_separate_calls_did(
    head: bool, size: int, window: int, trailers: list[tuple[bytes, bytes]]
) -> None:
    body = b"b" * size
    one = Twin(_LIMITS)
    one_client = _open(one, window)
    two = Twin(_LIMITS)
    two_client = _open(two, window)
    if not head:  # the head went out before (a streamed body)
        one.send_headers(1, 200, _HEADERS)
        two.send_headers(1, 200, _HEADERS)
    done = one.finish_response(1, (200, _HEADERS) if head else None, body, trailers)
    fits = size <= min(window, 16384)
    assert done is (not size or fits)
    if done:
        if head:
            two.send_headers(1, 200, _HEADERS, not size and not trailers)
        if size or trailers or not head:
            two.end_stream(1, trailers, body)
    got, want = one.data_to_send(), two.data_to_send()
    assert got == want
    received = _received(one_client, got)
    assert received == _received(two_client, want)
    if done:
        assert received[-1] == ("end",)
    else:
        assert not any(r[0] in ("data", "end") for r in received)  # nothing went out
        assert one.send_window(1) == min(window, 16384)
