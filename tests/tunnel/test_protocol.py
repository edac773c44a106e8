"""The sans-IO protocol sessions, server (edge) and client (agent), wired
back to back in memory; and the server against a raw mux that behaves like
the SDK where ours does not (a Proxy stream dropped unread)."""

from __future__ import annotations

import json
import math
import struct

import pytest
from tunnel_support import frame_list, pump

from edgeward.tunnel import frames
from edgeward.tunnel.client import (
    AuthAnswered,
    BindAnswered,
    ClientSession,
    CommandReceived,
    HeartbeatAnswered,
    ProxyOpened,
    TunnelStopped,
    UnbindAnswered,
)
from edgeward.tunnel.client import HeartbeatTimedOut as ClientTimedOut
from edgeward.tunnel.errors import MessageError, RpcError, StreamResetError
from edgeward.tunnel.events import DataReceived, StreamEnded, StreamReset, WindowUpdated
from edgeward.tunnel.frames import ErrorCode
from edgeward.tunnel.messages import (
    NOT_SUPPORTED,
    Auth,
    AuthExtra,
    AuthResp,
    Bind,
    BindResp,
    HttpOpts,
    ProxyHeader,
    StopTunnel,
    StreamType,
)
from edgeward.tunnel.mux import Session
from edgeward.tunnel.server import (
    AuthRequested,
    BadRequest,
    BindRequested,
    CommandAnswered,
    EndpointReady,
    ProxyDropped,
    ServerSession,
    Unbound,
)
from edgeward.tunnel.server import HeartbeatTimedOut as ServerTimedOut

HEADER = ProxyHeader("ep-1", "192.0.2.10:54321", "https", "3")


def only(events: list[tuple[str, object]], kind: type) -> list[object]:
    return [e for _, e in events if isinstance(e, kind)]


def authenticated(
    token: str = "tok", performs: frozenset[StreamType] = frozenset()
) -> tuple[ClientSession, ServerSession]:
    client = ClientSession(heartbeat_interval=10, heartbeat_tolerance=15, performs=performs)
    server = ServerSession()
    client.start(0.0)
    client.authenticate(Auth(extra=AuthExtra(authtoken=token, client_type="edgeward")))
    (request,) = only(pump(client, server), AuthRequested)
    assert isinstance(request, AuthRequested)
    server.answer_auth(request.stream_id, AuthResp("3", "sess-1"), 0.0)
    (answer,) = only(pump(client, server), AuthAnswered)
    assert isinstance(answer, AuthAnswered)
    assert answer.result == AuthResp("3", "sess-1")
    return client, server


def bound(client: ClientSession, server: ServerSession) -> list[tuple[str, object]]:
    client.bind(Bind("https", HttpOpts(domain="app.example.test")))
    (request,) = only(pump(client, server), BindRequested)
    assert isinstance(request, BindRequested)
    resp = BindResp("ep-1", "https://app.example.test", "https", request.bind.opts, token="t")
    server.answer_bind(request.stream_id, resp, 0.0)
    return pump(client, server)


# --- auth and bind ---------------------------------------------------------------------------


def test_auth_carries_the_heartbeat_settings_in_nanoseconds() -> None:
    client, server = ClientSession(heartbeat_interval=2.5, heartbeat_tolerance=4), ServerSession()
    client.start(0.0)
    client.authenticate(Auth(extra=AuthExtra(authtoken="tok")))
    (request,) = only(pump(client, server), AuthRequested)
    assert isinstance(request, AuthRequested)
    assert request.auth.extra.heartbeat_interval == 2_500_000_000
    assert request.auth.extra.heartbeat_tolerance == 4_000_000_000
    assert request.auth.extra.authtoken == "tok"


def test_a_refused_auth_is_an_rpc_error_with_its_code() -> None:
    client, server = ClientSession(), ServerSession()
    client.authenticate(Auth(extra=AuthExtra(authtoken="bad")))
    (request,) = only(pump(client, server), AuthRequested)
    assert isinstance(request, AuthRequested)
    server.answer_auth(request.stream_id, RpcError("authentication failed", "ERR_NGROK_107"), 0.0)
    (answer,) = only(pump(client, server), AuthAnswered)
    assert isinstance(answer, AuthAnswered)
    assert isinstance(answer.result, RpcError)
    assert answer.result.error_code == "ERR_NGROK_107"
    assert server.auth is None
    # a second try on the same session is allowed
    client.authenticate(Auth(extra=AuthExtra(authtoken="good")))
    assert len(only(pump(client, server), AuthRequested)) == 1


def test_the_rpc_streams_close_in_the_sdks_order() -> None:
    # request without FIN; answer + FIN; then the client's FIN: the stream is gone
    client, server = authenticated()
    assert client.mux.open_streams == 1  # the heartbeat stream only
    assert server.mux.open_streams == 1


def test_bind_before_auth_and_a_second_auth_are_refused() -> None:
    client, server = ClientSession(), ServerSession()
    client.bind(Bind("https", HttpOpts(domain="a.example.test")))
    events = pump(client, server)
    (bad,) = only(events, BadRequest)
    assert isinstance(bad, BadRequest)
    assert bad.error.args[0] == "authenticate the session first"
    (answer,) = only(events, BindAnswered)
    assert isinstance(answer, BindAnswered)
    assert isinstance(answer.result, RpcError)
    client, server = authenticated()
    client.authenticate(Auth())
    (again,) = only(pump(client, server), AuthAnswered)
    assert isinstance(again, AuthAnswered)
    assert str(again.result) == "the session is already authenticated"


def test_a_bind_sent_before_the_auth_answer_waits_for_it() -> None:
    client, server = ClientSession(), ServerSession()
    client.authenticate(Auth(extra=AuthExtra(authtoken="tok")))
    client.bind(Bind("https", HttpOpts(domain="early.example.test")))
    events = pump(client, server)
    (request,) = only(events, AuthRequested)
    assert only(events, BindRequested) == [] and only(events, BadRequest) == []
    assert isinstance(request, AuthRequested)
    held = server.answer_auth(request.stream_id, AuthResp("3", "s"), 0.0)
    assert [type(e) for e in held] == [BindRequested]
    # refused instead: the held Bind is refused too
    client, server = ClientSession(), ServerSession()
    client.authenticate(Auth())
    client.bind(Bind("https", HttpOpts()))
    (request,) = only(pump(client, server), AuthRequested)
    assert isinstance(request, AuthRequested)
    held = server.answer_auth(request.stream_id, RpcError("no"), 0.0)
    assert [type(e) for e in held] == [BadRequest]
    answers = pump(client, server)
    (bind_answer,) = only(answers, BindAnswered)
    assert str(bind_answer.result) == "authenticate the session first"  # type: ignore[attr-defined]


def test_bind_then_endpoint_ready_once_the_client_has_read_the_answer() -> None:
    client, server = authenticated()
    events = bound(client, server)
    (answer,) = only(events, BindAnswered)
    assert isinstance(answer, BindAnswered)
    assert isinstance(answer.result, BindResp)
    assert answer.result.url == "https://app.example.test"
    assert answer.result.token == "t"
    assert client.endpoints.keys() == {"ep-1"}
    assert server.endpoints.keys() == {"ep-1"}
    # the order on the wire: the answer reaches the client before its FIN reaches us
    tags = [(side, type(e).__name__) for side, e in events]
    assert tags.index(("C", "BindAnswered")) < tags.index(("S", "EndpointReady"))
    assert only(events, EndpointReady) == [EndpointReady("ep-1")]
    assert server.is_ready("ep-1")
    assert server.ready_time("ep-1") == -math.inf


def test_a_bind_whose_stream_the_client_keeps_open_is_ready_after_a_grace() -> None:
    # a raw client that never closes the Bind stream
    client, server = authenticated()
    sid = client.mux.open_stream(StreamType.BIND, Bind("http", HttpOpts()).encode())
    only(pump(client, server), BindRequested)
    server.answer_bind(sid, BindResp("ep-7", "http://x", "http", HttpOpts(), token="t"), 10.0)
    client.mux.receive_data(server.data_to_send())
    assert "ep-7" in server.endpoints
    assert not server.is_ready("ep-7")
    assert server.ready_time("ep-7") == 10.0 + server.ready_grace
    assert server.ready_time("ep-8") is None


def test_a_malformed_request_is_answered_with_an_error() -> None:
    client, server = authenticated()
    sid = client.mux.open_stream(StreamType.BIND, b'{"Proto":"ssh","Opts":{}}')  # raw
    events = server.receive_data(client.data_to_send(), 0.0)
    (bad,) = [e for e in events if isinstance(e, BadRequest)]
    assert isinstance(bad.error, MessageError)
    assert bad.error.where == "Bind.Proto"
    answer = frame_list(server.data_to_send())
    assert answer[-1] == frames.Data(
        sid, b'{"Error":"Bind.Proto: unsupported protocol \'ssh\'"}', fin=True
    )


def test_requests_of_unsupported_types_are_answered_and_others_refused() -> None:
    client, server = authenticated()
    labeled = client.mux.open_stream(StreamType.BIND_LABELED, b"{}")
    proxy = client.mux.open_stream(StreamType.PROXY, b"")
    unknown = client.mux.open_stream(1234, b"")
    events = server.receive_data(client.data_to_send(), 0.0)
    assert [type(e) for e in events] == [BadRequest]
    sent = frame_list(server.data_to_send())
    assert (
        frames.Data(labeled, b'{"Error":"BIND_LABELED requests are not supported"}', fin=True)
        in sent
    )
    assert frames.Rst(proxy, ErrorCode.STREAM_REFUSED) in sent
    assert frames.Rst(unknown, ErrorCode.STREAM_REFUSED) in sent


def test_unbind_withdraws_the_endpoint_and_is_idempotent() -> None:
    client, server = authenticated()
    bound(client, server)
    client.unbind("ep-1")
    events = pump(client, server)
    assert only(events, Unbound) == [Unbound("ep-1")]
    assert only(events, UnbindAnswered) == [UnbindAnswered(9, "ep-1", None)]
    assert server.endpoints == {} and client.endpoints == {}
    assert not server.is_ready("ep-1")
    assert server.ready_time("ep-1") is None
    client.unbind("ep-1")
    events = pump(client, server)
    assert only(events, Unbound) == []
    assert only(events, UnbindAnswered)[0].error is None  # type: ignore[attr-defined]


# --- proxy streams ---------------------------------------------------------------------------


def test_a_proxy_stream_both_ways() -> None:
    client, server = authenticated()
    bound(client, server)
    sid = server.open_proxy(HEADER, b"GET / HTTP/1.1\r\n\r\n")
    assert sid == 2
    events = pump(client, server)
    assert [e for _, e in events] == [
        ProxyOpened(sid, HEADER),
        DataReceived(sid, b"GET / HTTP/1.1\r\n\r\n"),
    ]
    client.acknowledge(sid, 18)
    client.send_data(sid, b"HTTP/1.1 204 No Content\r\n\r\n", fin=True)
    events = pump(client, server)
    assert [e for _, e in events] == [
        WindowUpdated(sid, 4 + len(HEADER.encode()) + 18),  # credited at FIN
        DataReceived(sid, b"HTTP/1.1 204 No Content\r\n\r\n"),
        StreamEnded(sid),
    ]
    server.end_stream(sid)
    assert pump(client, server) == [("C", StreamEnded(sid))]
    assert client.mux.open_streams == server.mux.open_streams == 1
    assert server._proxies == {} and client._proxies == set()


def test_our_client_refuses_a_proxy_stream_for_an_unknown_endpoint() -> None:
    client, server = authenticated()
    sid = server.open_proxy(ProxyHeader("ep-9", "192.0.2.1:1", "https"), b"GET / HTTP/1.1\r\n\r\n")
    events = pump(client, server)
    assert [e for _, e in events] == [
        WindowUpdated(sid, 4 + len(ProxyHeader("ep-9", "192.0.2.1:1", "https").encode())),
        ProxyDropped(sid),
        StreamReset(sid, ErrorCode.STREAM_REFUSED, True),
    ]


def test_the_sdk_drop_of_an_early_proxy_stream_is_reported() -> None:
    """The SDK reads the header (crediting exactly its bytes), does not know
    the id yet and drops the stream with an empty FIN."""
    client, server = authenticated()
    bound(client, server)
    sid = server.open_proxy(HEADER, b"GET / HTTP/1.1\r\n\r\n")
    server.data_to_send()
    prefix = 4 + len(HEADER.encode())
    sdk_says = frames.encode_wndinc(sid, 4) + frames.encode_wndinc(sid, 8)
    sdk_says += frames.encode_wndinc(sid, prefix - 12) + frames.data_header(sid, 0, fin=True)
    events = server.receive_data(sdk_says, 0.0)
    assert events[-2:] == [ProxyDropped(sid), StreamEnded(sid)]
    # a stream the agent did read is not reported
    other = server.open_proxy(HEADER, b"GET / HTTP/1.1\r\n\r\n")
    read = frames.encode_wndinc(other, prefix + 18) + frames.data_header(other, 0, fin=True)
    assert ProxyDropped(other) not in server.receive_data(read, 0.0)


def test_proxy_header_is_read_across_frames_and_credited() -> None:
    client, server = authenticated()
    bound(client, server)
    wire = struct.pack(">I", StreamType.PROXY) + HEADER.encode() + b"payload"
    sid = 2
    pieces = [wire[:3], wire[3:9], wire[9:20], wire[20:]]
    events = client.receive_data(frames.encode(frames.Data(sid, pieces[0], syn=True)), 0.0)
    for piece in pieces[1:]:
        events += client.receive_data(frames.encode(frames.Data(sid, piece)), 0.0)
    assert events == [ProxyOpened(sid, HEADER), DataReceived(sid, b"payload")]


def test_session_loss_resets_the_proxy_streams_only() -> None:
    client, server = authenticated()
    bound(client, server)
    sid = server.open_proxy(HEADER)
    pump(client, server)
    assert server.connection_lost() == [StreamReset(sid, ErrorCode.PEER_EOF, True)]
    assert client.connection_lost() == [StreamReset(sid, ErrorCode.PEER_EOF, True)]


# --- heartbeats ------------------------------------------------------------------------------


def test_client_beats_are_echoed_and_timed() -> None:
    client, server = authenticated()
    assert client.next_deadline() == 10.0
    assert client.tick(10.0) == []
    events = pump(client, server, now=10.25)
    assert only(events, HeartbeatAnswered) == [HeartbeatAnswered(0.25)]
    assert client.next_deadline() == 20.0


def test_a_client_without_echoes_times_out() -> None:
    client, _server = authenticated()
    client.tick(10.0)
    client.data_to_send()  # the beat is lost
    assert client.tick(24.9) == []
    assert client.tick(25.1) == [ClientTimedOut()]
    assert client.tick(26.0) == []  # said once
    assert client.next_deadline() is None


def test_a_wrong_echo_stops_the_client_beating() -> None:
    client = ClientSession()
    client.start(0.0)
    client.data_to_send()
    beat_stream = 3
    assert client.receive_data(frames.encode(frames.Data(beat_stream, b"nope")), 0.1) == [
        ClientTimedOut()
    ]


def test_the_server_watches_the_agents_beats() -> None:
    client, server = authenticated()  # auth at t=0: interval 10 s + tolerance 15 s
    assert server.next_deadline() == 25.0
    client.tick(10.0)
    pump(client, server, now=10.0)
    assert server.last_heartbeat == 10.0
    assert server.next_deadline() == 35.0
    assert server.tick(34.0) == []
    assert server.tick(35.5) == [ServerTimedOut()]
    assert server.tick(40.0) == []


def test_heartbeat_streams_opened_by_the_server_are_echoed_by_the_client() -> None:
    client, server = authenticated()
    sid = server.mux.open_stream(StreamType.HEARTBEAT, b"\x01\x02\x03\x04")  # raw
    assert client.receive_data(server.data_to_send(), 0.0) == []
    events = server.mux.receive_data(client.data_to_send())
    assert DataReceived(sid, b"\x01\x02\x03\x04") in events


# --- commands and StopTunnel ---------------------------------------------------------------


@pytest.mark.parametrize("kind", [StreamType.STOP, StreamType.RESTART, StreamType.UPDATE])
def test_commands_are_answered_not_supported(kind: StreamType) -> None:
    client, server = authenticated()
    sid = server.send_command(kind, "9.9.9")
    events = pump(client, server)
    assert only(events, CommandReceived) == [CommandReceived(kind)]
    assert only(events, CommandAnswered) == [CommandAnswered(sid, kind, NOT_SUPPORTED)]
    assert server.mux.open_streams == client.mux.open_streams == 1


def test_a_command_the_agent_performs_is_answered_done() -> None:
    client, server = authenticated(performs=frozenset({StreamType.STOP}))
    stop = server.send_command(StreamType.STOP)
    restart = server.send_command(StreamType.RESTART)
    events = pump(client, server)
    assert only(events, CommandReceived) == [
        CommandReceived(StreamType.STOP, performed=True),
        CommandReceived(StreamType.RESTART, performed=False),
    ]
    assert only(events, CommandAnswered) == [
        CommandAnswered(stop, StreamType.STOP, None),
        CommandAnswered(restart, StreamType.RESTART, NOT_SUPPORTED),
    ]


def test_stop_tunnel_withdraws_the_endpoint_on_both_sides() -> None:
    client, server = authenticated()
    bound(client, server)
    server.stop_tunnel(StopTunnel("ep-1", "revoked", "ERR_NGROK_3200"))
    events = pump(client, server)
    assert only(events, TunnelStopped) == [
        TunnelStopped(StopTunnel("ep-1", "revoked", "ERR_NGROK_3200"))
    ]
    assert client.endpoints == {} and server.endpoints == {}
    assert server.mux.open_streams == client.mux.open_streams == 1


def test_a_reset_call_settles_with_an_error() -> None:
    client, server = authenticated()
    sid = client.bind(Bind("https", HttpOpts()))
    only(pump(client, server), BindRequested)
    server.reset_stream(sid, ErrorCode.INTERNAL)
    (answer,) = only(pump(client, server), BindAnswered)
    assert isinstance(answer, BindAnswered)
    assert isinstance(answer.result, StreamResetError)
    assert answer.result.error_code == ErrorCode.INTERNAL
    server.answer_bind(sid, BindResp("ep-1", "u", "https", HttpOpts(), token="t"), 0.0)
    assert server.data_to_send() == b"" and server.endpoints == {}


def test_a_request_the_client_gave_up_on_is_not_answered() -> None:
    client, server = authenticated()
    sid = client.bind(Bind("https", HttpOpts()))
    only(pump(client, server), BindRequested)
    client.reset_stream(sid)
    pump(client, server)
    server.answer_bind(sid, BindResp("ep-1", "u", "https", HttpOpts(), token="t"), 0.0)
    assert server.data_to_send() == b"" and server.endpoints == {}


def test_the_client_wire_matches_the_sdk_shapes() -> None:
    client = ClientSession()
    client.authenticate(Auth(extra=AuthExtra(authtoken="tok", client_type="edgeward")))
    client.bind(
        Bind("https", HttpOpts(domain="a.example.test"), forwards_to="http://localhost:8080")
    )
    sent = frame_list(client.data_to_send())
    auth_frame, bind_frame = sent
    assert isinstance(auth_frame, frames.Data) and auth_frame.syn and not auth_frame.fin
    assert auth_frame.data[:4] == b"\x00\x00\x00\x00"
    assert set(json.loads(auth_frame.data[4:])["Extra"]) >= {"AuthToken", "HeartbeatInterval"}
    assert isinstance(bind_frame, frames.Data) and bind_frame.data[:4] == b"\x00\x00\x00\x01"
    assert json.loads(bind_frame.data[4:])["Opts"]["Domain"] == "a.example.test"


def test_mux_level_stream_types_of_an_idle_session() -> None:
    session = Session(client=True)
    client = ClientSession(mux=session)
    client.start(0.0)
    (beat,) = frame_list(client.data_to_send())
    assert isinstance(beat, frames.Data)
    assert beat.syn and beat.data[:4] == b"\xff\xff\xff\xff" and len(beat.data) == 8


# --- limits a hostile agent meets --------------------------------------------------------------


def test_a_request_must_fit_the_window_it_is_not_credited() -> None:
    client, server = authenticated()
    window = server.mux.window
    with pytest.raises(MessageError) as too_big:  # our client says so before sending
        client.bind(Bind("https", HttpOpts(traffic_policy="x" * window)))
    assert too_big.value.where == "Bind"
    # a raw client that fills the window without finishing the object
    sid = client.mux.open_stream(StreamType.BIND, b'{"Proto":"' + b"x" * (window - 14))
    events = server.receive_data(client.data_to_send(), 0.0)
    (bad,) = [e for e in events if isinstance(e, BadRequest)]
    assert isinstance(bad.error, MessageError)
    assert f"larger than {window - 5} bytes" in bad.error.reason
    sent = frame_list(server.data_to_send())
    credit = [f for f in sent if isinstance(f, frames.WndInc) and f.stream_id == sid]
    assert credit == [frames.WndInc(sid, 4)]  # the type only, as the answer goes
    assert sent[-1] == frames.Data(
        sid, b'{"Error":"Bind: larger than %d bytes"}' % (window - 5), fin=True
    )


def test_requests_in_flight_are_bounded() -> None:
    from edgeward.tunnel.server import MAX_PENDING_REQUESTS

    client, server = authenticated()
    for _ in range(MAX_PENDING_REQUESTS + 1):
        client.mux.open_stream(StreamType.BIND, b'{"Proto":')  # never completed
    server.receive_data(client.data_to_send(), 0.0)
    refused = 5 + 2 * (MAX_PENDING_REQUESTS + 1)
    assert frame_list(server.data_to_send()) == [
        frames.WndInc(refused, 4),  # its type, credited as the stream goes
        frames.Rst(refused, ErrorCode.ENHANCE_YOUR_CALM),
    ]


def test_a_proxy_stream_the_agent_answered_is_not_dropped() -> None:
    # a TCP upstream that speaks first (a banner) and closes, before the client said anything
    client, server = authenticated()
    bound(client, server)
    sid = server.open_proxy(HEADER)
    pump(client, server)
    client.send_data(sid, b"SSH-2.0-banner\r\n", fin=True)
    events = [e for _, e in pump(client, server)]
    assert ProxyDropped(sid) not in events
    assert StreamEnded(sid) in events
