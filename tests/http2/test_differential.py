"""The native `H2Server` against the reference (h2) on valid traffic: an h2
client sends hypothesis-generated request sequences (bodies, trailers,
resets, pings, settings changes), the bytes are split at random points, both
servers are driven alike (responses as the windows allow, bodies
acknowledged) and must emit the same events and frames (`Twin`). The hostile
cases run through the same `Twin` in tests/proxy/test_*_h2_sansio.py."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.http2.twin import Twin, comparable

from edgeward.http2 import NATIVE, Body, ConnectionEnded, EndBody, H2Limits, Request, StreamReset
from edgeward.http2.connection import H2Server as Reference
from edgeward.http2.fast import H2Server as Native

pytestmark = pytest.mark.skipif(not NATIVE, reason="the native H2Server is not built")

_HEADER = st.tuples(
    st.sampled_from([b"accept", b"user-agent", b"x-custom", b"cookie", b"content-type", b"te"]),
    st.sampled_from([b"*/*", b"h2load", b"a=1", b"trailers", b"text/plain", b"", b"v" * 300]),
).filter(  # h2's client refuses another TE only after HPACK-indexing the fields before it:
    # its next header block would not decode as it meant (hostile TE: the hostile tests)
    lambda field: field[0] != b"te" or field[1] == b"trailers"
)
_REQUEST = st.fixed_dictionaries(
    {
        "method": st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"OPTIONS"]),
        "path": st.sampled_from([b"/", b"/small", b"/a/b?c=d", b"/" + b"x" * 200]),
        "headers": st.lists(_HEADER, max_size=6),
        "body": st.lists(st.binary(max_size=3000), max_size=4),
        "declare": st.booleans(),  # content-length
        "trailers": st.booleans(),
        "reset": st.booleans(),
    }
)
_ACTION = st.one_of(
    _REQUEST,
    st.just("ping"),
    st.builds(lambda w: ("window", w), st.integers(0, 200_000)),
    st.builds(lambda t: ("table", t), st.sampled_from([0, 256, 4096])),
)


def _client() -> h2.connection.H2Connection:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    return client


def _feed(server: Twin, data: bytes, cuts: list[int], now: float) -> list[object]:
    events: list[object] = []
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for lo, hi in itertools.pairwise(bounds):
        events += server.receive_data(data[lo:hi], now)
    return events


def _send(client: h2.connection.H2Connection, action: object) -> None:
    if action == "ping":
        client.ping(b"12345678")
        return
    if isinstance(action, tuple):
        kind, value = action
        if kind == "window":
            if value:
                client.increment_flow_control_window(value)
        else:
            client.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: value})
        return
    assert isinstance(action, dict)
    sid = client.get_next_available_stream_id()
    body = b"".join(action["body"]) if action["method"] != b"HEAD" else b""
    headers = [
        (b":method", action["method"]),
        (b":path", action["path"]),
        (b":scheme", b"http"),
        (b":authority", b"a.test"),
        *action["headers"],
    ]
    if action["declare"] and action["method"] != b"HEAD":
        headers.append((b"content-length", b"%d" % len(body)))
    if not body and not action["trailers"]:
        client.send_headers(sid, headers, end_stream=True)
    else:
        client.send_headers(sid, headers)
        pos = 0
        while pos < len(body):
            room = min(client.local_flow_control_window(sid), client.max_outbound_frame_size)
            if room <= 0:
                break
            client.send_data(sid, body[pos : pos + room])
            pos += room
        if action["trailers"]:
            client.send_headers(sid, [(b"x-checksum", b"1")], end_stream=True)
        else:
            client.end_stream(sid)
    if action["reset"]:
        client.reset_stream(sid)


def _serve(server: Twin, events: list[object], ready: set[int], heads: set[int]) -> None:
    """Both servers answer alike: bodies acknowledged, each finished request
    answered with a small response (what the windows allow of it)."""
    for event in events:
        if isinstance(event, Body):
            server.consumed(event.stream_id, event.flow_length)
        elif isinstance(event, Request):
            if event.method == b"HEAD":
                heads.add(event.stream_id)
            if event.end_stream:
                ready.add(event.stream_id)
        elif isinstance(event, EndBody):
            ready.add(event.stream_id)
        elif isinstance(event, StreamReset):
            ready.discard(event.stream_id)
    for sid in sorted(ready):
        if server.send_window(sid) < 0:
            ready.discard(sid)
            continue
        server.send_headers(sid, 200, [(b"content-type", b"text/plain"), (b"x-id", b"%d" % sid)])
        body = b"" if sid in heads else b"r" * (sid * 37 % 500)
        window = server.send_window(sid)
        if window >= len(body):
            server.end_stream(sid, [(b"x-trailer", b"t")] if sid % 3 == 0 else [], body)
            ready.discard(sid)
        elif window > 0:
            server.send_data(sid, body[:window])
            server.reset(sid, 0)
            ready.discard(sid)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(_ACTION, min_size=1, max_size=10),
    st.lists(st.integers(0, 10**6), max_size=6),
    st.sampled_from([H2Limits(), H2Limits(stream_window=65535, connection_window=65535)]),
)
def test_same_events_and_frames_on_valid_traffic(
    actions: list[object], cuts: list[int], limits: H2Limits
) -> None:
    client = _client()
    server = Twin(limits)
    server.initiate()
    ready: set[int] = set()
    heads: set[int] = set()
    data = client.data_to_send()
    for step, action in enumerate(actions):
        # the client's own rules (windows, settings in flight): skip
        with contextlib.suppress(h2.exceptions.ProtocolError):
            _send(client, action)
        data += client.data_to_send()
        events = _feed(server, data, cuts, float(step))
        _serve(server, events, ready, heads)
        out = server.data_to_send()
        server.all_sent()
        for event in client.receive_data(out):
            if isinstance(event, h2.events.DataReceived) and event.flow_controlled_length:
                client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        data = client.data_to_send()
        if server.ended:
            break


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=4))
def test_garbage_after_the_preface_ends_alike(junk: bytes, cuts: list[int]) -> None:
    """Random bytes after a valid start: the connection goes on, or ends
    with the same code, on both. (h2 drops the other events of a read that
    ends in a connection error, so only the ending is compared.)"""
    client = _client()
    hello = client.data_to_send()
    endings = []
    for server in (Reference(), Native()):
        server.initiate()
        server.receive_data(hello, 0.0)
        events = []
        bounds = sorted({0, len(junk), *(c % (len(junk) + 1) for c in cuts)})
        for lo, hi in itertools.pairwise(bounds):
            events += server.receive_data(junk[lo:hi], 0.0)
        ends = [e.error_code for e in events if isinstance(e, ConnectionEnded)]
        endings.append((server.ended, ends[-1:]))
    if endings[0] == (False, []) and endings[1] == (True, [6]):
        return  # an oversized frame: h2 waits for all of it first, we refuse its header
    assert endings[0] == endings[1]


# --- generated frame sequences, malformed ones included --------------------------------------

_SIDS = st.sampled_from([0, 1, 1, 3, 3, 5, 7, 9, 2, 4, 2**31 - 1])
_NAMES = [b"accept", b"x-a", b"Upper", b"connection", b"te", b"content-length", b"cookie", b""]
_VALUES = [b"", b"1", b"trailers", b"gzip", b" lead", b"a\x00b", b"-1", b"v" * 100]
_PSEUDO = st.lists(
    st.tuples(
        st.sampled_from([b":method", b":path", b":scheme", b":authority", b":status", b":x"]),
        st.sampled_from([b"GET", b"POST", b"/", b"*", b"", b"http", b"https", b"ftp", b"a.test"]),
    ),
    max_size=3,
)
_FIELDS = st.one_of(
    # a request with :scheme as the transport's, or another one
    st.builds(
        lambda method, scheme, extra, pseudo: [
            (b":method", method),
            (b":path", b"/p"),
            (b":scheme", scheme),
            (b":authority", b"a.test"),
            *pseudo,
            *extra,
        ],
        st.sampled_from([b"GET", b"POST", b"HEAD", b"CONNECT", b"get"]),
        st.sampled_from([b"http", b"https", b"ftp"]),
        st.lists(st.tuples(st.sampled_from(_NAMES), st.sampled_from(_VALUES)), max_size=4),
        _PSEUDO,
    ),
    st.lists(st.tuples(st.sampled_from(_NAMES), st.sampled_from(_VALUES)), max_size=3),  # trailers
)


def _frame(ftype: int, flags: int, sid: int, payload: bytes) -> bytes:
    return (
        len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload
    )


def _padded(payload: bytes, pad: int | None, flags: int) -> tuple[bytes, int]:
    if pad is None:
        return payload, flags
    return bytes([pad]) + payload + b"\x00" * pad, flags | 0x8


def _data_frame(sid: int, data: bytes, end: bool, pad: int | None) -> bytes:
    payload, flags = _padded(data, pad, int(end))
    return _frame(0, flags, sid, payload)


_FRAME = st.one_of(
    st.builds(  # HEADERS: an encoded field list or raw bytes, maybe split for CONTINUATION
        lambda *args: ("headers", *args),
        _SIDS,
        _FIELDS,
        st.none() | st.binary(max_size=12),
        st.booleans(),
        st.booleans(),
        st.none() | st.integers(0, 4),
        st.none() | st.integers(0, 9),
    ),
    st.builds(
        _data_frame,
        _SIDS,
        st.binary(max_size=40),
        st.booleans(),
        st.none() | st.integers(0, 50),
    ),
    st.builds(
        lambda sid, block, end: _frame(9, 4 if end else 0, sid, block),
        _SIDS,
        st.binary(max_size=8),
        st.booleans(),
    ),
    st.builds(
        lambda ack, pairs: _frame(
            4, int(ack), 0, b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in pairs)
        ),
        st.booleans(),
        st.lists(
            st.tuples(
                st.integers(0, 9), st.sampled_from([0, 1, 100, 16384, 2**24, 2**31, 2**32 - 1])
            ),
            max_size=3,
        ),
    ),
    st.builds(
        lambda ack, size: _frame(6, int(ack), 0, b"x" * size),
        st.booleans(),
        st.sampled_from([8, 8, 7]),
    ),
    st.builds(
        lambda sid, dep, size: _frame(2, 0, sid, (dep.to_bytes(4, "big") + b"\x10")[:size]),
        _SIDS,
        _SIDS,
        st.sampled_from([5, 5, 4]),
    ),
    st.builds(
        lambda sid, code: _frame(3, 0, sid, code.to_bytes(4, "big")), _SIDS, st.integers(0, 14)
    ),
    st.builds(
        lambda sid, inc: _frame(8, 0, sid, inc.to_bytes(4, "big")),
        _SIDS,
        st.sampled_from([0, 1, 1000, 2**31 - 1]),
    ),
    st.builds(
        lambda code: _frame(7, 0, 0, (0).to_bytes(4, "big") + code.to_bytes(4, "big")),
        st.integers(0, 2),
    ),
    st.builds(lambda sid: _frame(5, 4, sid, (2).to_bytes(4, "big")), _SIDS),  # PUSH_PROMISE
    st.builds(
        lambda ftype, sid, body: _frame(ftype, 0, sid, body),
        st.integers(10, 255),
        _SIDS,
        st.binary(max_size=4),
    ),
)
_FLOOD = st.builds(
    lambda frame, n: ("flood", frame, n),
    st.sampled_from(
        [
            _frame(6, 0, 0, b"12345678"),  # PING
            _frame(4, 0, 0, b""),  # SETTINGS
            _frame(0, 0, 1, b""),  # empty DATA
            _frame(2, 0, 3, b"\x00\x00\x00\x00\x10"),  # PRIORITY
            _frame(0, 0, 1, b"x"),  # DATA on a stream that may be reset: RST_STREAM answers
        ]
    ),
    st.integers(2, 1200),
)
_STEP = st.one_of(_FRAME, _FLOOD, st.just("flush"), st.just("written"), st.just("answer"))
_LIMITS = st.sampled_from(
    [
        H2Limits(),
        H2Limits(max_concurrent_streams=2, max_resets=4, max_control_frames=5, max_empty_frames=3),
        H2Limits(max_concurrent_streams=1, max_header_list_size=200),
    ]
)


def _headers_frame(step: tuple[Any, ...], encoder: hpack.Encoder) -> bytes:
    _, sid, fields, raw, end, split, pad, prio = step
    block = raw if raw is not None else encoder.encode(fields, huffman=False)
    flags = (1 if end else 0) | (0 if split else 4)
    first = block[: len(block) // 2] if split else block
    if prio is not None:
        first = prio.to_bytes(4, "big") + b"\x10" + first
        flags |= 0x20
    payload, flags = _padded(first, pad, flags)
    out = _frame(1, flags, sid, payload)
    if split:
        out += _frame(9, 4, sid, block[len(block) // 2 :])
    return out


@settings(max_examples=400, deadline=None)
@given(
    st.lists(_STEP, min_size=1, max_size=14),
    _LIMITS,
    st.sampled_from([b"http", b"https"]),
    st.lists(st.integers(0, 10**5), max_size=4),
)
def test_same_events_and_frames_on_generated_frames(
    steps: list[Any], limits: H2Limits, scheme: bytes, cuts: list[int]
) -> None:
    """Frame sequences from a client that follows no rule: wrong streams,
    bad lengths, malformed and mis-schemed requests, header blocks that are
    not HPACK, floods of control and empty frames, streams past the limit
    (REFUSED_STREAM). The two servers must agree on every event and frame,
    whatever the reads and whether the answers were written (the control
    frame limit counts answers not yet written)."""
    client = _client()
    server = Twin(limits, scheme)
    server.initiate()
    # the client acknowledges our SETTINGS first: h2 applies its limits only
    # then (the native side at once, so before the ACK it is the stricter)
    server.receive_data(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send(), 0.0)
    server.all_sent()
    encoder = hpack.Encoder()
    ready: set[int] = set()
    heads: set[int] = set()
    seen: list[object] = []  # events not yet answered
    for now, step in enumerate(steps):
        if step == "flush":
            server.data_to_send()
        elif step == "written":
            server.data_to_send()
            server.all_sent()
        elif step == "answer":
            _serve(server, seen, ready, heads)
            seen = []
        else:
            if isinstance(step, tuple) and step[0] == "flood":
                data = step[1] * step[2]
            elif isinstance(step, tuple):
                data = _headers_frame(step, encoder)
            else:
                data = step
            seen += _feed(server, data, cuts, float(now))
        if server.ended:
            break
    server.data_to_send()


@pytest.mark.parametrize("between", [b"", _data_frame(1, b"", False, None)])
def test_a_continuation_outside_a_header_block_ends_the_connection(between: bytes) -> None:
    """RFC 9113 §6.10, whatever the stream's state: here a stream reset as
    malformed. h2 alone would reset the stream or end the connection
    depending on whether it has forgotten the stream yet."""
    client = _client()
    server = Twin()
    server.initiate()
    server.receive_data(client.data_to_send(), 0.0)
    encoder = hpack.Encoder()
    malformed = _frame(1, 0x5, 1, encoder.encode([(b":method", b"GET")], huffman=False))
    server.receive_data(malformed + between, 1.0)
    ended = server.receive_data(_frame(9, 0x4, 1, b""), 2.0)
    assert comparable(ended) == [("ended", 1)]  # PROTOCOL_ERROR
    server.data_to_send()
