"""The sans-IO muxado session: ids, typed streams, windows and credit,
half-close, RST, GOAWAY, limits, the unknown-stream rules; and two sessions
back to back under random windows, splits and acknowledgements."""

from __future__ import annotations

import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tunnel_support import frame_list

from edgeward.tunnel import frames
from edgeward.tunnel.errors import FlowControlError, SessionClosedError, StreamClosedError
from edgeward.tunnel.events import (
    DataReceived,
    GoAwayReceived,
    SessionFailed,
    StreamEnded,
    StreamOpened,
    StreamReset,
    WindowUpdated,
)
from edgeward.tunnel.frames import ErrorCode
from edgeward.tunnel.mux import DEFAULT_WINDOW, Session

W = DEFAULT_WINDOW
TYPE = b"\x00\x00\x00\x07"


def syn(stream_id: int, data: bytes = TYPE, fin: bool = False) -> bytes:
    return frames.encode(frames.Data(stream_id, data, fin=fin, syn=True))


def data(stream_id: int, payload: bytes, fin: bool = False) -> bytes:
    return frames.encode(frames.Data(stream_id, payload, fin=fin))


def opened_server(stream_id: int = 3) -> Session:
    """A server with client stream `stream_id` open and typed."""
    server = Session(client=False)
    assert server.receive_data(syn(stream_id)) == [StreamOpened(stream_id, 7)]
    return server


# --- ids and typed streams ---------------------------------------------------------


def test_clients_open_odd_ids_from_3_and_servers_even_ids_from_2() -> None:
    client, server = Session(client=True), Session(client=False)
    assert [client.open_stream(0) for _ in range(3)] == [3, 5, 7]
    assert [server.open_stream(3) for _ in range(3)] == [2, 4, 6]


def test_open_stream_writes_the_type_in_the_syn_frame() -> None:
    client = Session(client=True)
    client.open_stream(1, b'{"Id":""}')
    assert frame_list(client.data_to_send()) == [
        frames.Data(3, b"\x00\x00\x00\x01" + b'{"Id":""}', syn=True)
    ]
    client.open_stream(0xFFFFFFFF, fin=True)
    assert frame_list(client.data_to_send()) == [
        frames.Data(5, b"\xff\xff\xff\xff", fin=True, syn=True)
    ]


def test_the_type_may_arrive_in_pieces_and_the_payload_follows_it() -> None:
    server = Session(client=False)
    assert server.receive_data(syn(3, b"\x00\x00")) == []
    assert server.receive_data(data(3, b"\x00\x01{")) == [
        StreamOpened(3, 1),
        DataReceived(3, b"{"),
    ]
    assert server.receive_data(data(3, b"}", fin=True)) == [
        DataReceived(3, b"}"),
        StreamEnded(3),
    ]


def test_a_stream_that_ends_before_its_type_is_reset_silently() -> None:
    server = Session(client=False)
    assert server.receive_data(syn(3, b"\x00\x00", fin=True)) == []
    assert frame_list(server.data_to_send()) == [frames.Rst(3, ErrorCode.PROTOCOL)]
    assert not server.is_open(3)


def test_a_syn_with_our_own_parity_ends_the_session() -> None:
    server = Session(client=False)
    events = server.receive_data(syn(4))
    assert events == [SessionFailed(ErrorCode.PROTOCOL, "SYN for stream 4: wrong parity")]
    assert frame_list(server.data_to_send()) == [
        frames.GoAway(0, ErrorCode.PROTOCOL, b"SYN for stream 4: wrong parity")
    ]
    assert server.closed
    assert server.receive_data(syn(5)) == []  # nothing more happens
    client = Session(client=True)
    assert isinstance(client.receive_data(syn(3))[0], SessionFailed)


def test_a_second_syn_for_an_open_stream_ends_the_session() -> None:
    server = opened_server(3)
    assert server.receive_data(syn(3)) == [
        SessionFailed(ErrorCode.PROTOCOL, "SYN for open stream 3")
    ]
    assert frame_list(server.data_to_send()) == [
        frames.GoAway(3, ErrorCode.PROTOCOL, b"SYN for open stream 3")
    ]


def test_ids_need_not_arrive_in_order() -> None:
    # the SDKs assign ids at open and send the SYN at the first write
    server = Session(client=False)
    assert server.receive_data(syn(7) + syn(3)) == [StreamOpened(7, 7), StreamOpened(3, 7)]
    assert server.last_remote_id == 7


def test_a_broken_header_ends_the_session_after_the_frames_before_it() -> None:
    server = Session(client=False)
    events = server.receive_data(syn(3) + frames.encode(frames.Rst(3, 0))[:4] + b"\0\0\0\0")
    assert events == [
        StreamOpened(3, 7),
        SessionFailed(ErrorCode.PROTOCOL, "RST frame on stream 0"),
    ]
    assert frame_list(server.data_to_send()) == [
        frames.GoAway(3, ErrorCode.PROTOCOL, b"RST frame on stream 0")
    ]


def test_a_data_frame_longer_than_the_window_is_a_frame_size_error() -> None:
    server = opened_server(3)
    events = server.receive_data(frames.data_header(3, W + 1))
    assert events == [
        SessionFailed(ErrorCode.FRAME_SIZE, f"frame of {W + 1} bytes exceeds the limit of {W}")
    ]


# --- windows and credit ---------------------------------------------------------------


def test_the_peer_may_fill_the_window_exactly_and_no_more() -> None:
    server = opened_server(3)
    # the 4 type bytes count against the window too
    events = server.receive_data(data(3, b"x" * (W - 4)))
    assert events == [DataReceived(3, b"x" * (W - 4))]
    assert server.receive_data(data(3, b"y")) == [StreamReset(3, ErrorCode.FLOW_CONTROL, False)]
    assert frame_list(server.data_to_send()) == [frames.Rst(3, ErrorCode.FLOW_CONTROL)]
    assert not server.is_open(3)
    # later frames for it meet the unknown-stream rule
    assert server.receive_data(data(3, b"z")) == []
    assert frame_list(server.data_to_send()) == [frames.Rst(3, ErrorCode.STREAM_CLOSED)]


def test_what_the_opener_sent_counts_against_the_peers_window_not_its_own() -> None:
    # The edge opens a Proxy stream with its header: the agent may still
    # answer with a whole window before any credit (a bulk download did this).
    server = Session(client=False)
    stream_id = server.open_stream(3, b"h" * 100)
    assert server.send_window(stream_id) == W - 4 - 100
    client = Session(client=True)
    client.receive_data(server.data_to_send())
    assert client.send_window(stream_id) == W
    client.send_data(stream_id, b"x" * W)
    events = server.receive_data(client.data_to_send())
    assert events == [DataReceived(stream_id, b"x" * W)]


def test_credit_is_batched_then_sent_in_quarters_of_the_window() -> None:
    server = opened_server(3)
    server.receive_data(data(3, b"x" * 100_000))
    server.acknowledge(3, 1000)
    server.acknowledge(3, 1000)
    assert server.data_to_send() == b""  # 2004 bytes owed: under a quarter
    server.acknowledge(3, W // 4)
    assert frame_list(server.data_to_send()) == [frames.WndInc(3, 2004 + W // 4)]


def test_credit_never_exceeds_what_was_received() -> None:
    server = opened_server(3)
    server.receive_data(data(3, b"x" * 10))
    server.acknowledge(3, 10_000_000)  # a caller bug must not inflate the peer's window
    server.end_stream(3)
    assert frame_list(server.data_to_send()) == [
        frames.WndInc(3, 14),
        frames.Data(3, b"", fin=True),
    ]


def test_what_is_owed_is_credited_before_fin_and_rst() -> None:
    # the edge learns from it that the agent read the data (server.ProxyDropped)
    server = opened_server(3)
    server.receive_data(data(3, b"request"))
    server.acknowledge(3, 7)
    server.send_data(3, b"response", fin=True)
    assert frame_list(server.data_to_send()) == [
        frames.WndInc(3, 11),
        frames.Data(3, b"response", fin=True),
    ]
    other = opened_server(5)
    other.reset_stream(5, ErrorCode.STREAM_CANCELLED)
    assert frame_list(other.data_to_send()) == [
        frames.WndInc(5, 4),
        frames.Rst(5, ErrorCode.STREAM_CANCELLED),
    ]


def test_no_credit_is_sent_once_the_peer_has_finished() -> None:
    server = opened_server(3)
    server.receive_data(data(3, b"x" * (W // 2), fin=True))
    server.acknowledge(3, W // 2)
    assert server.data_to_send() == b""


def test_sending_respects_the_peer_window_and_wndinc_opens_it() -> None:
    client = Session(client=True)
    sid = client.open_stream(1)
    assert client.send_window(sid) == W - 4
    client.send_data(sid, b"x" * (W - 4))
    assert client.send_window(sid) == 0
    with pytest.raises(FlowControlError) as caught:
        client.send_data(sid, b"y")
    assert (caught.value.stream_id, caught.value.size, caught.value.window) == (sid, 1, 0)
    assert client.receive_data(frames.encode(frames.WndInc(sid, 100))) == [WindowUpdated(sid, 100)]
    assert client.send_window(sid) == 100


def test_large_writes_are_split_at_the_frame_limit() -> None:
    client = Session(client=True, max_frame_size=1000)
    sid = client.open_stream(1)
    client.data_to_send()
    client.send_data(sid, bytes(range(250)) * 10, fin=True)
    sent = frame_list(client.data_to_send())
    assert [len(f.data) for f in sent if isinstance(f, frames.Data)] == [1000, 1000, 500]
    assert [f.fin for f in sent if isinstance(f, frames.Data)] == [False, False, True]
    assert b"".join(f.data for f in sent if isinstance(f, frames.Data)) == bytes(range(250)) * 10


def test_the_window_is_not_negotiated_both_sides_start_at_256_kib() -> None:
    assert DEFAULT_WINDOW == 256 * 1024
    server = opened_server(3)
    server.open_stream(3)
    assert server.send_window(2) == W - 4
    assert server.send_window(3) == W


# --- half-close, reset, unknown streams ---------------------------------------------------


def test_a_stream_closes_when_both_sides_have_sent_fin() -> None:
    server = opened_server(3)
    server.send_data(3, b"answer", fin=True)
    assert server.is_open(3)
    assert not server.is_writable(3)
    with pytest.raises(StreamClosedError):
        server.send_data(3, b"more")
    assert server.receive_data(data(3, b"", fin=True)) == [StreamEnded(3)]
    assert not server.is_open(3)
    assert server.open_streams == 0


def test_data_after_the_peers_fin_resets_the_stream() -> None:
    server = opened_server(3)
    server.receive_data(data(3, b"", fin=True))
    assert server.receive_data(data(3, b"late")) == [StreamReset(3, ErrorCode.STREAM_CLOSED, False)]
    assert frame_list(server.data_to_send()) == [frames.Rst(3, ErrorCode.STREAM_CLOSED)]


def test_a_duplicate_empty_fin_is_ignored() -> None:
    server = opened_server(3)
    assert server.receive_data(data(3, b"", fin=True)) == [StreamEnded(3)]
    assert server.receive_data(data(3, b"", fin=True)) == []


def test_rst_from_the_peer_ends_the_stream() -> None:
    server = opened_server(3)
    assert server.receive_data(frames.encode(frames.Rst(3, ErrorCode.STREAM_CANCELLED))) == [
        StreamReset(3, ErrorCode.STREAM_CANCELLED, True)
    ]
    assert not server.is_open(3)
    server.reset_stream(3)  # already gone: nothing written
    assert server.data_to_send() == b""


def test_unknown_streams_as_the_sdk_treats_them() -> None:
    # non-FIN or non-empty DATA: RST(STREAM_CLOSED); an empty FIN, RST, WNDINC: ignored
    server = Session(client=False)
    assert server.receive_data(data(9, b"x")) == []
    assert server.receive_data(data(11, b"")) == []
    assert server.receive_data(data(13, b"y", fin=True)) == []
    assert frame_list(server.data_to_send()) == [
        frames.Rst(9, ErrorCode.STREAM_CLOSED),
        frames.Rst(11, ErrorCode.STREAM_CLOSED),
        frames.Rst(13, ErrorCode.STREAM_CLOSED),
    ]
    quiet = (
        data(15, b"", fin=True)
        + frames.encode(frames.Rst(17, 1))
        + frames.encode(frames.WndInc(19, 5))
    )
    assert server.receive_data(quiet) == []
    assert server.data_to_send() == b""


# --- limits ------------------------------------------------------------------------------


def test_beyond_the_stream_limit_new_streams_are_refused() -> None:
    server = Session(client=False, max_streams=2)
    assert len(server.receive_data(syn(3) + syn(5))) == 2
    assert server.receive_data(syn(7)) == []
    assert frame_list(server.data_to_send()) == [frames.Rst(7, ErrorCode.STREAMS_EXHAUSTED)]
    with pytest.raises(SessionClosedError) as caught:
        server.open_stream(3)
    assert caught.value.error_code == ErrorCode.STREAMS_EXHAUSTED


def test_streams_waiting_for_their_type_fill_the_accept_backlog() -> None:
    server = Session(client=False, accept_backlog=2)
    assert server.receive_data(syn(3, b"\x00") + syn(5, b"")) == []
    assert server.receive_data(syn(7)) == []
    assert frame_list(server.data_to_send()) == [frames.Rst(7, ErrorCode.ACCEPT_QUEUE_FULL)]
    assert server.receive_data(data(3, b"\x00\x00\x01")) == [StreamOpened(3, 1)]
    assert server.receive_data(syn(9)) == [StreamOpened(9, 7)]  # typed at once
    assert server.receive_data(syn(11, b"")) == []  # waits, and fills the backlog again
    assert server.receive_data(syn(13)) == []
    assert frame_list(server.data_to_send()) == [frames.Rst(13, ErrorCode.ACCEPT_QUEUE_FULL)]
    # a stream that leaves before its type frees its place too
    server.receive_data(frames.encode(frames.Rst(5, 0)))
    assert server.receive_data(syn(15)) == [StreamOpened(15, 7)]
    # typed streams do not count: many may arrive in one read
    many = b"".join(syn(n) for n in range(17, 17 + 2 * 100, 2))
    assert len(server.receive_data(many)) == 100


def test_ids_run_out() -> None:
    client = Session(client=True)
    client._next_id = frames.MAX_STREAM_ID
    client.open_stream(1)
    with pytest.raises(SessionClosedError) as caught:
        client.open_stream(1)
    assert caught.value.error_code == ErrorCode.STREAMS_EXHAUSTED


# --- GOAWAY, the end ----------------------------------------------------------------------


def test_after_our_goaway_new_streams_are_refused_and_old_ones_go_on() -> None:
    server = opened_server(3)
    server.go_away(ErrorCode.NONE, b"draining")
    assert frame_list(server.data_to_send()) == [frames.GoAway(3, ErrorCode.NONE, b"draining")]
    assert server.receive_data(syn(5)) == []
    assert frame_list(server.data_to_send()) == [frames.Rst(5, ErrorCode.STREAM_REFUSED)]
    assert server.receive_data(data(3, b"still here")) == [DataReceived(3, b"still here")]


def test_a_goaway_resets_our_streams_it_did_not_cover() -> None:
    client = Session(client=True)
    first, second = client.open_stream(1), client.open_stream(1)
    events = client.receive_data(frames.encode(frames.GoAway(first, ErrorCode.NONE, b"bye")))
    assert events == [
        GoAwayReceived(first, ErrorCode.NONE, b"bye"),
        StreamReset(second, ErrorCode.REMOTE_GONE_AWAY, True),
    ]
    assert client.is_open(first)
    with pytest.raises(SessionClosedError) as caught:
        client.open_stream(1)
    assert caught.value.error_code == ErrorCode.REMOTE_GONE_AWAY


def test_connection_lost_resets_every_known_stream() -> None:
    server = opened_server(3)
    server.receive_data(syn(5, b"\x00"))  # untyped: the caller never heard of it
    server.open_stream(3)
    assert server.connection_lost() == [
        StreamReset(3, ErrorCode.PEER_EOF, True),
        StreamReset(2, ErrorCode.PEER_EOF, True),
    ]
    assert server.closed
    with pytest.raises(SessionClosedError):
        server.open_stream(3)


# --- two sessions back to back ---------------------------------------------------------------


class _Peer:
    """One side of a random exchange: what it wrote, what it read."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.to_write: dict[int, bytes] = {}
        self.received: dict[int, bytearray] = {}
        self.ended: set[int] = set()
        self.unread: list[tuple[int, int]] = []  # (stream, bytes) not yet acknowledged

    def on_events(self, events: list[object]) -> None:
        for event in events:
            if isinstance(event, StreamOpened):
                self.received.setdefault(event.stream_id, bytearray())
            elif isinstance(event, DataReceived):
                self.received.setdefault(event.stream_id, bytearray()).extend(event.data)
                self.unread.append((event.stream_id, len(event.data)))
            elif isinstance(event, StreamEnded):
                self.ended.add(event.stream_id)
            else:
                assert isinstance(event, WindowUpdated), event

    def step(self, rng: random.Random) -> None:
        if self.unread and rng.random() < 0.6:  # the application reads some
            stream_id, size = self.unread.pop(rng.randrange(len(self.unread)))
            self.session.acknowledge(stream_id, size)
        for stream_id, rest in list(self.to_write.items()):
            window = self.session.send_window(stream_id)
            size = min(window, len(rest), rng.choice([1, 7, 1000, 70_000, 300_000]))
            if size or not rest:
                chunk, self.to_write[stream_id] = rest[:size], rest[size:]
                done = not self.to_write[stream_id]
                self.session.send_data(stream_id, chunk, fin=done)
                if done:
                    del self.to_write[stream_id]


@settings(max_examples=60)
@example([600_000, 5, 0], [300_000], 1)
@given(
    st.lists(st.integers(0, 600_000), min_size=1, max_size=6),
    st.lists(st.integers(0, 600_000), max_size=6),
    st.integers(0, 2**32),
)
def test_back_to_back_sessions_deliver_every_byte_in_order(
    client_sizes: list[int], server_sizes: list[int], seed: int
) -> None:
    """Streams opened by both sides, payloads past several windows, random
    write sizes, acknowledgements in random order and the wire split at
    random points: every stream arrives whole, in order, with its FIN."""
    rng = random.Random(seed)
    client, server = _Peer(Session(client=True)), _Peer(Session(client=False))
    expected: dict[int, bytes] = {}
    for peer, sizes in ((client, client_sizes), (server, server_sizes)):
        for size in sizes:
            payload = rng.randbytes(size)
            stream_id = peer.session.open_stream(9)
            peer.to_write[stream_id] = payload
            expected[stream_id] = payload
    for _ in range(10_000):
        for peer, other in ((client, server), (server, client)):
            peer.step(rng)
            wire = peer.session.data_to_send()
            while wire:  # delivered in random pieces
                cut = rng.randint(1, len(wire))
                other.on_events(other.session.receive_data(wire[:cut]))
                wire = wire[cut:]
        done = not client.to_write and not server.to_write
        if done and not client.unread and not server.unread:
            break
    for stream_id, payload in expected.items():
        reader = server if stream_id & 1 else client
        assert bytes(reader.received[stream_id]) == payload
        assert stream_id in reader.ended
