"""`H2Server`'s abuse limits and request checks without sockets (issue 9,
items 5-8): a real h2 client, or frames built with hyperframe, on the other
side of a byte pipe."""

from __future__ import annotations

import itertools

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest
from hyperframe.frame import (
    DataFrame,
    ExtensionFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from hypothesis import given
from hypothesis import strategies as st
from tests.http2.twin import implementations

from edgeward.http2 import Body, ConnectionEnded, EndBody, H2Limits, H2Server, Request, StreamReset
from edgeward.http2.connection import MAX_CONTROL_FRAMES, MAX_EMPTY_FRAMES
from edgeward.http2.frames import FrameScanner, answers

# every test on the chosen build, and again on both side by side (tests/http2/twin.py)
implementation = implementations(__name__)

E = h2.errors.ErrorCodes
GET = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"a.test")]
POST = [(b":method", b"POST"), *GET[1:]]


def connect(
    limits: H2Limits | None = None, scheme: bytes = b"http"
) -> tuple[h2.connection.H2Connection, H2Server]:
    """A server and a client that sends whatever it is given."""
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(
            client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False
        )
    )
    client.initiate_connection()
    server = H2Server(limits or H2Limits(), scheme)
    server.initiate()
    server.receive_data(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send())
    server.all_sent()
    del client.remote_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS]  # not obeyed
    return client, server


def client_events(client: h2.connection.H2Connection, server: H2Server) -> list[h2.events.Event]:
    return client.receive_data(server.data_to_send())


def resets(events: list[h2.events.Event]) -> list[tuple[int, int]]:
    return [(e.stream_id, e.error_code) for e in events if isinstance(e, h2.events.StreamReset)]


def goaways(events: list[h2.events.Event]) -> list[int]:
    return [e.error_code for e in events if isinstance(e, h2.events.ConnectionTerminated)]


def sent_frames(data: bytes) -> list[Frame]:
    """The frames in `data`, parsed by hyperframe."""
    out, pos = [], 0
    while pos < len(data):
        frame, length = Frame.parse_frame_header(memoryview(data[pos : pos + 9]))
        frame.parse_body(memoryview(data[pos + 9 : pos + 9 + length]))
        out.append(frame)
        pos += 9 + length
    return out


def raw_goaways(data: bytes) -> list[tuple[int, int]]:
    """(last stream id, error code) of the GOAWAY frames in `data`."""
    return [
        (f.last_stream_id, f.error_code) for f in sent_frames(data) if isinstance(f, GoAwayFrame)
    ]


# --- 5. :scheme is the connection's ---------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "sent"),
    [
        (b"http", b"https"),
        (b"http", b"https, for=10.0.0.1"),
        (b"http", b"HTTP"),
        (b"http", b"ftp"),
        (b"https", b"http"),
        (b"https", b"https;x"),
    ],
)
def test_scheme_other_than_the_connection_s_is_malformed(scheme: bytes, sent: bytes) -> None:
    client, server = connect(scheme=scheme)
    client.send_headers(1, [GET[0], GET[1], (b":scheme", sent), GET[3]], end_stream=True)
    client.send_headers(3, [GET[0], GET[1], (b":scheme", scheme), GET[3]], end_stream=True)
    events = server.receive_data(client.data_to_send(), 0.0)
    assert [(type(e), e.stream_id) for e in events] == [(Request, 3)]  # type: ignore[union-attr]
    assert isinstance(events[0], Request) and events[0].scheme == scheme
    assert resets(client_events(client, server)) == [(1, E.PROTOCOL_ERROR)]


def test_connect_is_a_request_in_authority_form() -> None:
    """CONNECT has no :scheme and no :path: the head carries the authority
    as its target (as HTTP/1.1's CONNECT does) and the connection's scheme."""
    client, server = connect(scheme=b"https")
    client.send_headers(1, [(b":method", b"CONNECT"), (b":authority", b"a.test:443")])
    (event,) = server.receive_data(client.data_to_send(), 0.0)
    assert isinstance(event, Request)
    assert (event.method, event.target, event.authority, event.scheme) == (
        b"CONNECT",
        b"a.test:443",
        b"a.test:443",
        b"https",
    )
    assert not event.end_stream


@pytest.mark.parametrize(
    "fields",
    [
        [(b":method", b"CONNECT"), (b":authority", b"a.test")],  # no port
        [(b":method", b"CONNECT"), (b"host", b"a.test:443")],  # Host is not :authority
        [(b":method", b"CONNECT"), (b":authority", b"u@a.test:443")],  # userinfo
        # extended CONNECT (RFC 8441) without our SETTINGS_ENABLE_CONNECT_PROTOCOL
        [(b":method", b"CONNECT"), (b":protocol", b"websocket"), *GET[1:]],
    ],
)
def test_malformed_connect(fields: list[tuple[bytes, bytes]]) -> None:
    client, server = connect()
    client.send_headers(1, fields, end_stream=True)
    assert server.receive_data(client.data_to_send(), 0.0) == []
    assert resets(client_events(client, server)) == [(1, E.PROTOCOL_ERROR)]


# --- 6. floods --------------------------------------------------------------------------------


FLOODS = {
    "settings": SettingsFrame(0).serialize(),
    "ping": PingFrame(0, opaque_data=b"12345678").serialize(),
    "window update": WindowUpdateFrame(0, window_increment=1).serialize(),
}


@pytest.mark.parametrize("kind", ["settings", "ping"])
def test_answered_frames_past_the_limit_end_the_connection(kind: str) -> None:
    """A read of 20k SETTINGS (or PINGs) is stopped after about the limit:
    h2 never answers the rest, and the client sees one GOAWAY."""
    _client, server = connect()
    events = server.receive_data(FLOODS[kind] * 20_000, 0.0)
    assert [type(e) for e in events][-1] is ConnectionEnded
    assert isinstance(events[-1], ConnectionEnded)
    assert events[-1].error_code == E.ENHANCE_YOUR_CALM
    out = server.data_to_send()
    assert MAX_CONTROL_FRAMES < answers(out) <= MAX_CONTROL_FRAMES + 64  # one slice more
    assert raw_goaways(out) == [(0, E.ENHANCE_YOUR_CALM)]
    assert server.receive_data(FLOODS[kind], 0.0) == []  # nothing after the end


@pytest.mark.parametrize("kind", ["settings", "ping"])
def test_answers_count_until_they_are_written(kind: str) -> None:
    """The limit is on answers waiting for the socket: a client that reads
    them (the driver says all was sent) may go on; one that does not is cut
    off once they pile up past the limit."""
    _, server = connect()
    batch = FLOODS[kind] * 600
    for _ in range(10):
        assert not any(isinstance(e, ConnectionEnded) for e in server.receive_data(batch, 0.0))
        assert answers(server.data_to_send()) == 600
        server.all_sent()
    assert not any(isinstance(e, ConnectionEnded) for e in server.receive_data(batch, 0.0))
    server.data_to_send()  # taken, not yet written
    events = server.receive_data(batch, 0.0)
    assert isinstance(events[-1], ConnectionEnded)
    assert events[-1].error_code == E.ENHANCE_YOUR_CALM


def test_unanswered_control_frames_are_not_counted() -> None:
    _, server = connect()
    events = server.receive_data(FLOODS["window update"] * 5000, 0.0)
    assert not any(isinstance(e, ConnectionEnded) for e in events)


def test_rst_stream_answers_count() -> None:
    """DATA on a stream the client reset is answered with RST_STREAM each
    time (h2 does it): those count as control frames too."""
    client, server = connect()
    client.send_headers(1, POST)
    client.reset_stream(1)
    data = client.data_to_send() + DataFrame(1, data=b"x").serialize() * 5000
    events = server.receive_data(data, 0.0)
    assert isinstance(events[-1], ConnectionEnded)
    assert events[-1].error_code == E.ENHANCE_YOUR_CALM


def test_a_custom_control_frame_limit() -> None:
    _, server = connect(H2Limits(max_control_frames=10))
    assert not server.receive_data(FLOODS["ping"] * 10, 0.0)
    events = server.receive_data(FLOODS["ping"], 0.0)  # the 11th before any was written
    assert isinstance(events[-1], ConnectionEnded)


def _open_upload(
    limits: H2Limits | None = None,
) -> tuple[h2.connection.H2Connection, H2Server]:
    client, server = connect(limits)
    client.send_headers(1, POST)
    (request,) = server.receive_data(client.data_to_send(), 0.0)
    assert isinstance(request, Request)
    return client, server


EMPTY_DATA = DataFrame(1).serialize()


def test_empty_data_frames_past_the_limit_end_the_connection() -> None:
    client, server = _open_upload()
    events = server.receive_data(EMPTY_DATA * MAX_EMPTY_FRAMES, 0.0)
    assert all(isinstance(e, Body) for e in events) and len(events) == MAX_EMPTY_FRAMES
    events = server.receive_data(EMPTY_DATA * 300_000, 0.0)
    assert events == [ConnectionEnded(E.ENHANCE_YOUR_CALM, "too many empty frames")]
    assert goaways(client_events(client, server)) == [E.ENHANCE_YOUR_CALM]


@pytest.mark.parametrize(
    "empty",
    [
        DataFrame(1, flags=["PADDED"], pad_length=3).serialize(),  # padding only
        PriorityFrame(1, depends_on=0, stream_weight=16).serialize(),
        ExtensionFrame(0x42, 0, flag_byte=0, body=b"").serialize(),  # an unknown type
    ],
    ids=["padded", "priority", "unknown"],
)
def test_frames_that_carry_nothing_count_as_empty(empty: bytes) -> None:
    _, server = _open_upload()
    events = server.receive_data(empty * (MAX_EMPTY_FRAMES + 1), 0.0)
    assert isinstance(events[-1], ConnectionEnded)
    assert events[-1].error_code == E.ENHANCE_YOUR_CALM


def test_only_consecutive_empty_frames_count() -> None:
    """Content, or a stream's end, starts the count again."""
    _, server = _open_upload(H2Limits(max_empty_frames=3))
    with_content = DataFrame(1, data=b"x").serialize()
    events = server.receive_data((EMPTY_DATA * 3 + with_content) * 50, 0.0)
    assert not any(isinstance(e, ConnectionEnded) for e in events)
    end = DataFrame(1, flags=["END_STREAM"]).serialize()
    events = server.receive_data(EMPTY_DATA * 3 + end, 0.0)
    assert isinstance(events[-1], EndBody)
    events = server.receive_data(EMPTY_DATA, 0.0)  # on a closed stream: an RST answer
    assert not any(isinstance(e, ConnectionEnded) for e in events)


# --- 7. the stream limit ---------------------------------------------------------------------


def test_stream_past_the_limit_is_refused_alone() -> None:
    client, server = connect(H2Limits(max_concurrent_streams=3))
    for sid in (1, 3, 5, 7):
        client.send_headers(sid, GET, end_stream=True)
    events = server.receive_data(client.data_to_send(), 0.0)
    assert [e.stream_id for e in events if isinstance(e, Request)] == [1, 3, 5]
    assert resets(client_events(client, server)) == [(7, E.REFUSED_STREAM)]
    # one finishes: a new stream fits again
    server.send_headers(1, 200, [])
    server.end_stream(1, [])
    client.receive_data(server.data_to_send())
    client.send_headers(9, GET, end_stream=True)
    client.send_headers(11, GET, end_stream=True)
    events = server.receive_data(client.data_to_send(), 0.0)
    assert [e.stream_id for e in events if isinstance(e, Request)] == [9]
    assert resets(client_events(client, server)) == [(11, E.REFUSED_STREAM)]


def test_streams_closed_earlier_in_the_same_read_free_their_place() -> None:
    """In the order frames arrive: a stream the client resets, or ends after
    our response ended, no longer counts for the HEADERS that follow it."""
    client, server = connect(H2Limits(max_concurrent_streams=2))
    client.send_headers(1, POST)
    client.send_headers(3, GET, end_stream=True)
    server.receive_data(client.data_to_send(), 0.0)
    server.send_headers(1, 200, [])
    server.end_stream(1, [])  # our side of 1 is done; the client still uploads
    client.receive_data(server.data_to_send())
    client.end_stream(1)  # closes 1
    client.send_headers(5, GET, end_stream=True)
    client.reset_stream(3)  # closes 3
    client.send_headers(7, GET, end_stream=True)
    client.send_headers(9, GET, end_stream=True)  # 5 and 7 are open: refused
    events = server.receive_data(client.data_to_send(), 0.0)
    assert [e.stream_id for e in events if isinstance(e, Request)] == [5, 7]
    assert resets(client_events(client, server)) == [(9, E.REFUSED_STREAM)]


def test_refused_streams_count_towards_the_reset_limit() -> None:
    client, server = connect(H2Limits(max_concurrent_streams=1, max_resets=5))
    client.send_headers(1, GET, end_stream=True)
    for i in range(8):
        client.send_headers(3 + 2 * i, GET, end_stream=True)
    events = server.receive_data(client.data_to_send(), 0.0)
    assert isinstance(events[-1], ConnectionEnded)
    assert events[-1].error_code == E.ENHANCE_YOUR_CALM


def test_streams_after_our_goaway_are_refused() -> None:
    client, server = connect()
    client.send_headers(1, GET, end_stream=True)
    server.receive_data(client.data_to_send(), 0.0)
    server.goaway()
    client.send_headers(3, GET, end_stream=True)
    assert server.receive_data(client.data_to_send(), 0.0) == []
    sent = [
        (type(f), f.stream_id, f.error_code)
        for f in sent_frames(server.data_to_send())
        if isinstance(f, GoAwayFrame | RstStreamFrame)
    ]
    assert sent == [(GoAwayFrame, 0, E.NO_ERROR), (RstStreamFrame, 3, E.REFUSED_STREAM)]


# --- 8. malformed requests -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [b"/a b", b"/a\x7fb", b"/caf\xc3\xa9", b"/t\tab", b"noslash", b"*", b"?q", b"http://a.test/"],
)
def test_malformed_path(path: bytes) -> None:
    client, server = connect()
    client.send_headers(1, [GET[0], (b":path", path), *GET[2:]], end_stream=True)
    assert server.receive_data(client.data_to_send(), 0.0) == []
    assert resets(client_events(client, server)) == [(1, E.PROTOCOL_ERROR)]


@pytest.mark.parametrize(
    "fields",
    [
        [(b":method", b"G T"), *GET[1:]],
        [(b":method", b"GET/1"), *GET[1:]],
        [*GET, (b"x-del", b"a\x7fb")],
        [*GET, (b"x-ctl", b"caf\xc3\xa9\x01")],
        [*GET, (b"x-esc", b"\x1b[31m")],
    ],
)
def test_what_http1_cannot_carry_is_malformed(fields: list[tuple[bytes, bytes]]) -> None:
    """A method that is not a token, a value with a control character:
    forwarded over HTTP/1.1 they would fail there (with a traceback)."""
    client, server = connect()
    client.send_headers(1, fields, end_stream=True)
    client.send_headers(3, [*GET, (b"x-ok", b"tab\tand caf\xc3\xa9")], end_stream=True)
    events = server.receive_data(client.data_to_send(), 0.0)
    assert [(type(e), e.stream_id) for e in events] == [(Request, 3)]  # type: ignore[union-attr]
    assert resets(client_events(client, server)) == [(1, E.PROTOCOL_ERROR)]


def test_options_asterisk() -> None:
    client, server = connect()
    client.send_headers(1, [(b":method", b"OPTIONS"), (b":path", b"*"), *GET[2:]], True)
    (event,) = server.receive_data(client.data_to_send(), 0.0)
    assert isinstance(event, Request) and event.target == b"*"


def test_content_length_with_end_stream_on_headers() -> None:
    client, server = connect()
    client.send_headers(1, [*POST, (b"content-length", b"100")], end_stream=True)
    client.send_headers(3, [*POST, (b"content-length", b"0")], end_stream=True)
    events = server.receive_data(client.data_to_send(), 0.0)
    assert [(type(e), e.stream_id) for e in events] == [(Request, 3)]  # type: ignore[union-attr]
    assert resets(client_events(client, server)) == [(1, E.PROTOCOL_ERROR)]


def _upload(client: h2.connection.H2Connection, declared: bytes, *chunks: bytes) -> bytes:
    """Stream 1 declaring `declared` bytes and sending `chunks`, the last
    with END_STREAM."""
    client.send_headers(1, [*POST, (b"content-length", declared)])
    for i, chunk in enumerate(chunks):
        client.send_data(1, chunk, end_stream=i == len(chunks) - 1)
    return client.data_to_send()


@pytest.mark.parametrize(
    ("declared", "chunks"),
    [
        (b"100", [b"x" * 10]),  # END_STREAM short of it
        (b"5", [b"x" * 10]),  # past it
        (b"5", [b"xxx", b"xxx"]),  # past it in the second frame
        (b"5", [b"xxxxx", b"x"]),
    ],
)
@pytest.mark.parametrize("split", [False, True], ids=["one read", "byte by byte"])
def test_content_length_that_disagrees_with_the_data(
    declared: bytes, chunks: list[bytes], split: bool
) -> None:
    """A stream error: the stream is reset before h2 sees the frame that
    breaks it (h2 would end the connection), and the body that is passed on
    never exceeds what was declared."""
    client, server = connect()
    data = _upload(client, declared, *chunks)
    events = []
    for piece in [data[i : i + 1] for i in range(len(data))] if split else [data]:
        events += server.receive_data(piece, 0.0)
    assert isinstance(events[0], Request)
    assert events[-1] == StreamReset(1, E.PROTOCOL_ERROR)
    assert sum(len(e.data) for e in events if isinstance(e, Body)) <= int(declared)
    assert not any(isinstance(e, EndBody | ConnectionEnded) for e in events)
    assert resets(client_events(client, server))[0] == (1, E.PROTOCOL_ERROR)
    # the connection goes on
    client.send_headers(client.get_next_available_stream_id(), GET, end_stream=True)
    assert [type(e) for e in server.receive_data(client.data_to_send(), 0.0)] == [Request]


def test_content_length_met_exactly() -> None:
    client, server = connect()
    data = _upload(client, b"6", b"xxx", b"", b"xxx")
    events = server.receive_data(data, 0.0)
    assert [type(e) for e in events] == [Request, Body, Body, Body, EndBody]


def test_trailers_short_of_the_content_length() -> None:
    client, server = connect()
    client.send_headers(1, [*POST, (b"content-length", b"10")])
    client.send_data(1, b"12345")
    client.send_headers(1, [(b"x-checksum", b"1")], end_stream=True)
    events = server.receive_data(client.data_to_send(), 0.0)
    assert [type(e) for e in events] == [Request, Body, StreamReset]


def test_head_with_content_is_malformed() -> None:
    """h2 counts a HEAD request's content as 0 bytes whatever it declares,
    and would end the connection for any: a stream error instead."""
    client, server = connect()
    client.send_headers(1, [(b":method", b"HEAD"), *GET[1:]])
    client.send_data(1, b"x", end_stream=True)
    events = server.receive_data(client.data_to_send(), 0.0)
    assert [type(e) for e in events] == [Request, StreamReset]


def test_one_goaway_for_a_protocol_error() -> None:
    """h2 writes a GOAWAY when it finds a connection error; we add none."""
    _client, server = connect()
    events = server.receive_data(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x", 0.0)  # DATA on 0
    assert isinstance(events[-1], ConnectionEnded)
    assert events[-1].error_code == E.PROTOCOL_ERROR
    assert [code for _, code in raw_goaways(server.data_to_send())] == [E.PROTOCOL_ERROR]


def test_graceful_then_error_goaway_never_more() -> None:
    client, server = connect()
    client.send_headers(1, GET, end_stream=True)
    server.receive_data(client.data_to_send(), 0.0)
    server.goaway()
    server.goaway()  # again: nothing more
    client.send_headers(3, GET, end_stream=True)  # refused, but h2 counts it as seen
    server.receive_data(client.data_to_send() + SettingsFrame(0).serialize() * 2000, 0.0)
    server.goaway(int(E.ENHANCE_YOUR_CALM))
    sent = raw_goaways(server.data_to_send())
    assert sent == [(1, E.NO_ERROR), (1, E.ENHANCE_YOUR_CALM)]  # last stream id never grows


# --- the frame scanner -----------------------------------------------------------------------

FRAMES = st.one_of(
    st.builds(
        lambda sid, data, pad, end: DataFrame(
            sid, data=data, pad_length=pad or 0, flags=(["PADDED"] if pad is not None else [])
            + (["END_STREAM"] if end else [])
        ),
        st.integers(1, 2**31 - 1), st.binary(max_size=40), st.none() | st.integers(0, 30),
        st.booleans(),
    ),
    st.builds(
        lambda sid, block, pad, prio: HeadersFrame(
            sid, data=block, pad_length=pad or 0,
            flags=(["PADDED"] if pad is not None else []) + (["PRIORITY"] if prio else [])
            + ["END_HEADERS"],
        ),
        st.integers(1, 2**31 - 1), st.binary(max_size=40), st.none() | st.integers(0, 30),
        st.booleans(),
    ),
    st.builds(lambda: SettingsFrame(0)),
    st.builds(lambda ack: PingFrame(0, flags=["ACK"] if ack else []), st.booleans()),
    st.builds(RstStreamFrame, st.integers(1, 100)),
)  # fmt: skip


@given(st.lists(FRAMES, max_size=12), st.lists(st.integers(0, 600), max_size=8))
def test_scanner_sees_every_frame_whatever_the_reads(frames: list[Frame], cuts: list[int]) -> None:
    """Each frame is reported once, with its type, flags, stream and
    content length (payload without padding and priority), before the read
    that completes it has been passed on; however the bytes are split."""
    wire = [f.serialize() for f in frames]
    data = b"P" * 24 + b"".join(wire)
    expected = []
    for f, raw in zip(frames, wire, strict=True):
        content = len(raw) - 9
        if isinstance(f, DataFrame | HeadersFrame):
            content = len(f.data)
        expected.append((raw[3], raw[4], f.stream_id, content))
    scanner = FrameScanner()
    seen = []
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    ends = []  # where each frame ends in the whole stream
    pos = 24
    for raw in wire:
        pos += len(raw)
        ends.append(pos)
    for lo, hi in itertools.pairwise(bounds):
        for start, ftype, flags, sid, content in scanner.scan(data[lo:hi]):
            assert ends[len(seen)] > lo + start  # reported before its end was read
            seen.append((ftype, flags, sid, content))
    assert seen == expected


def test_answers_counts_acks_and_resets() -> None:
    out = b"".join(
        f.serialize()
        for f in [
            SettingsFrame(0, flags=["ACK"]),
            SettingsFrame(0, settings={4: 100}),
            PingFrame(0, flags=["ACK"]),
            PingFrame(0),
            RstStreamFrame(1, error_code=1),
            DataFrame(1, data=b"\x00" * 100),
            GoAwayFrame(0),
        ]
    )
    assert answers(out) == 3
