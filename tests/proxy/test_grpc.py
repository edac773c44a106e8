"""gRPC end to end through the edge: a real `grpcio` client, the edge as a
real `edgeward serve` process, and a real `grpcio` server as the endpoint's
HTTP/2 upstream (`upstream: {url: ..., protocol: http2}`).

Each call shape runs on an h2c listener in front of an h2c upstream and on
a TLS listener (ALPN h2) in front of a TLS upstream (ALPN h2): unary,
server, client and bidi streaming, an error status with trailing metadata,
4 MiB messages both ways, and deadlines (the upstream sees the client's
`grpc-timeout`; a call past its deadline ends DEADLINE_EXCEEDED). The
methods are generic handlers on bytes (no generated code). Then what is
not gRPC-specific: a policy deny on a gRPC method, an HTTP/1.1 client
before the h2 upstream, and upstreams that are down, not HTTP/2, or reset
every stream.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import h2.config
import h2.connection
import h2.events
import httpx
import pytest
from hyperframe.frame import DataFrame, GoAwayFrame, HeadersFrame
from proxy_support import Edge, curl, free_port, start_edge

SERVICE = "edgeward.test.Echo"
MIB4 = 4 * 1024 * 1024
TRAILING = (("retry-hint", "later"), ("detail-bin", b"\x00\x01\xff"))

CONFIG = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
  - name: tls
    address: 127.0.0.1:{port_tls}
    tls:
      certificates: [{{cert: {cert}, key: {key}}}]
timeouts:
  upstream_connect: 5
endpoints:
  - name: grpc
    hostname: grpc.test
    listeners: [web]
    upstream: {{url: "http://127.0.0.1:{grpc_port}", protocol: http2}}
    traffic_policy:
      on_http_request:
        - name: no-forbidden
          expressions: ["req.url.path == '/{service}/Forbidden'"]
          actions: [{{type: deny}}]
  - name: grpc-tls
    hostname: app.test
    listeners: [tls]
    upstream: {{url: "https://127.0.0.1:{grpcs_port}", protocol: http2}}
    upstream_tls: {{ca: {ca}, server_name: app.test}}
  - name: down
    hostname: down.test
    listeners: [web]
    upstream: {{url: "http://127.0.0.1:{dead_port}", protocol: http2}}
  - name: not-h2
    hostname: noth2.test
    listeners: [web]
    upstream: {{url: "{http1_upstream}", protocol: http2}}
  - name: resets
    hostname: resets.test
    listeners: [web]
    upstream: {{url: "http://127.0.0.1:{reset_port}", protocol: http2}}
  - name: goaway
    hostname: goaway.test
    listeners: [web]
    upstream: {{url: "http://127.0.0.1:{goaway_port}", protocol: http2}}
"""


# --- the upstream: a grpcio server with generic handlers ------------------------------


class Seen:
    """What the upstream saw of the calls (read by the tests)."""

    def __init__(self) -> None:
        self.remaining: list[float | None] = []
        self.cancelled = threading.Event()


def _handlers(seen: Seen) -> grpc.GenericRpcHandler:
    def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
        return b"echo:" + request

    def size(request: bytes, context: grpc.ServicerContext) -> bytes:
        return struct.pack(">I", len(request))

    def big(request: bytes, context: grpc.ServicerContext) -> bytes:
        return b"z" * MIB4

    def server_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        for i in range(int(request)):
            yield b"item-%d" % i

    def client_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        return b"|".join(requests)

    def bidi(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        for request in requests:
            yield request.upper()

    def fail(request: bytes, context: grpc.ServicerContext) -> bytes:
        context.set_trailing_metadata(TRAILING)
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the widget is not ready")
        raise AssertionError("unreachable")

    def remaining(request: bytes, context: grpc.ServicerContext) -> bytes:
        seen.remaining.append(context.time_remaining())
        return b"ok"

    def slow(request: bytes, context: grpc.ServicerContext) -> bytes:
        done = threading.Event()
        context.add_callback(done.set)  # the call ended: cancelled or past its deadline
        if done.wait(60):
            seen.cancelled.set()
        return b"late"

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Forbidden": grpc.unary_unary_rpc_method_handler(unary),
            "Size": grpc.unary_unary_rpc_method_handler(size),
            "Big": grpc.unary_unary_rpc_method_handler(big),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
            "Fail": grpc.unary_unary_rpc_method_handler(fail),
            "Remaining": grpc.unary_unary_rpc_method_handler(remaining),
            "Slow": grpc.unary_unary_rpc_method_handler(slow),
        },
    )


class _ResettingUpstream:
    """An HTTP/2 server (h2, on a thread) that answers every request stream
    with RST_STREAM(REFUSED_STREAM)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        h2c.initiate_connection()
        with conn:
            conn.sendall(h2c.data_to_send())
            while data := conn.recv(65536):
                for event in h2c.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        h2c.reset_stream(event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                conn.sendall(h2c.data_to_send())

    def close(self) -> None:
        self.sock.close()


class _GoingAwayUpstream(_ResettingUpstream):
    """An HTTP/2 server that answers three requests per connection and, with
    the third answer, sends GOAWAY (NO_ERROR, last stream id: the third's),
    as nginx does at its 1000th: a stream in flight above it is never
    processed."""

    def _connection(self, conn: socket.socket) -> None:
        h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        h2c.initiate_connection()
        answered = 0
        with conn:
            conn.sendall(h2c.data_to_send())
            while data := conn.recv(65536):
                if answered >= 3:
                    continue  # gone away: nothing more is processed
                out = b""
                for event in h2c.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived) and answered < 3:
                        answered += 1
                        sid = event.stream_id
                        if answered < 3:
                            h2c.send_headers(sid, [(":status", "200")])
                            h2c.send_data(sid, b"ok", end_stream=True)
                            continue
                        out = h2c.data_to_send()  # h2 sends nothing after a GOAWAY: by hand
                        out += GoAwayFrame(0, last_stream_id=sid).serialize()
                        # b"\x88": `:status: 200` from HPACK's static table
                        out += HeadersFrame(sid, b"\x88", flags=["END_HEADERS"]).serialize()
                        out += DataFrame(sid, b"ok", flags=["END_STREAM"]).serialize()
                conn.sendall(out or h2c.data_to_send())


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, certs: dict[str, Path], upstream: object
) -> Iterator[tuple[Edge, Seen]]:
    seen = Seen()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((_handlers(seen),))
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    credentials = grpc.ssl_server_credentials(
        [(certs["app-key"].read_bytes(), certs["app"].read_bytes())]
    )
    grpcs_port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    resetting = _ResettingUpstream()
    going_away = _GoingAwayUpstream()
    directory = tmp_path_factory.mktemp("grpc")
    edge = start_edge(
        directory,
        CONFIG,
        listeners=["web", "tls"],
        cert=certs["app"],
        key=certs["app-key"],
        ca=certs["ca"],
        grpc_port=grpc_port,
        grpcs_port=grpcs_port,
        dead_port=free_port(),
        http1_upstream=upstream.url,  # type: ignore[attr-defined]
        reset_port=resetting.port,
        goaway_port=going_away.port,
        service=SERVICE,
    )
    yield edge, seen
    edge.stop()
    server.stop(None)
    resetting.close()
    going_away.close()


@pytest.fixture(params=["h2c", "tls"])
def channel(
    request: pytest.FixtureRequest, setup: tuple[Edge, Seen], certs: dict[str, Path]
) -> Iterator[grpc.Channel]:
    edge, _ = setup
    if request.param == "h2c":
        ch = grpc.insecure_channel(
            f"127.0.0.1:{edge.ports['web']}", options=[("grpc.default_authority", "grpc.test")]
        )
    else:
        credentials = grpc.ssl_channel_credentials(root_certificates=certs["ca"].read_bytes())
        ch = grpc.secure_channel(
            f"127.0.0.1:{edge.ports['tls']}",
            credentials,
            options=[("grpc.ssl_target_name_override", "app.test")],
        )
    with ch:
        yield ch


def _method(name: str) -> str:
    return f"/{SERVICE}/{name}"


# --- the call shapes, on both listeners ------------------------------------------


def test_unary(channel: grpc.Channel) -> None:
    reply, call = channel.unary_unary(_method("Unary")).with_call(b"hello", timeout=30)
    assert reply == b"echo:hello"
    assert call.code() == grpc.StatusCode.OK
    assert dict(call.initial_metadata()).get("edgeward-request-id")


def test_server_streaming(channel: grpc.Channel) -> None:
    replies = list(channel.unary_stream(_method("ServerStream"))(b"50", timeout=30))
    assert replies == [b"item-%d" % i for i in range(50)]


def test_client_streaming(channel: grpc.Channel) -> None:
    parts = (b"part-%d" % i for i in range(40))
    reply = channel.stream_unary(_method("ClientStream"))(parts, timeout=30)
    assert reply == b"|".join(b"part-%d" % i for i in range(40))


def test_bidi_streaming_is_interleaved(channel: grpc.Channel) -> None:
    """Each reply arrives before the next request is sent: the edge relays
    both directions of one stream at once."""
    outbox: list[bytes] = []
    ready = threading.Semaphore(0)

    def requests() -> Iterator[bytes]:
        for i in range(20):
            outbox.append(b"ping-%d" % i)
            yield outbox[-1]
            if not ready.acquire(timeout=30):
                return  # no reply came: the assertion below fails

    replies = []
    for reply in channel.stream_stream(_method("Bidi"))(requests(), timeout=60):
        replies.append(reply)
        ready.release()
    assert replies == [b"PING-%d" % i for i in range(20)]


def test_error_status_with_trailing_metadata(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(_method("Fail"))(b"x", timeout=30)
    call = info.value
    assert call.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
    assert call.details() == "the widget is not ready"  # type: ignore[attr-defined]
    trailing = dict(call.trailing_metadata())  # type: ignore[attr-defined]
    assert trailing["retry-hint"] == "later"
    assert trailing["detail-bin"] == b"\x00\x01\xff"


def test_4_mib_messages_both_ways(channel: grpc.Channel) -> None:
    """gRPC's default message limit is 4 MiB; the edge's body limit (100 MiB
    by default) and flow control let one such message through each way."""
    reply = channel.unary_unary(_method("Size"))(b"a" * MIB4, timeout=60)
    assert struct.unpack(">I", reply)[0] == MIB4
    reply = channel.unary_unary(_method("Big"))(b"", timeout=60)
    assert reply == b"z" * MIB4


def test_the_upstream_sees_the_deadline(channel: grpc.Channel, setup: tuple[Edge, Seen]) -> None:
    _, seen = setup
    before = len(seen.remaining)
    assert channel.unary_unary(_method("Remaining"))(b"", timeout=30) == b"ok"
    remaining = seen.remaining[before]
    assert remaining is not None and 0 < remaining <= 30


def test_a_call_past_its_deadline_ends_deadline_exceeded(
    channel: grpc.Channel, setup: tuple[Edge, Seen]
) -> None:
    _, seen = setup
    seen.cancelled.clear()
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(_method("Slow"))(b"", timeout=0.5)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
    assert seen.cancelled.wait(30)  # and the upstream's call ended too, not left running
    reply = channel.unary_unary(_method("Unary"))(b"after", timeout=30)  # the edge goes on
    assert reply == b"echo:after"


# --- what is not specific to one listener -------------------------------------------


def _h2c(setup: tuple[Edge, Seen]) -> grpc.Channel:
    edge, _ = setup
    return grpc.insecure_channel(
        f"127.0.0.1:{edge.ports['web']}", options=[("grpc.default_authority", "grpc.test")]
    )


def test_a_policy_deny_on_a_method_is_a_grpc_error(setup: tuple[Edge, Seen]) -> None:
    with _h2c(setup) as channel:
        with pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(_method("Forbidden"))(b"x", timeout=30)
        # 403 without grpc-status: gRPC maps the HTTP status (PERMISSION_DENIED)
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
        assert channel.unary_unary(_method("Unary"))(b"y", timeout=30) == b"echo:y"


def _frame(message: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(message)) + message


def test_an_http1_client_reaches_the_h2_upstream(setup: tuple[Edge, Seen]) -> None:
    """The edge translates: HTTP/1.1 in, HTTP/2 to the upstream, the
    response (and its body) back as HTTP/1.1."""
    edge, _ = setup
    response = httpx.post(
        edge.url(_method("Unary")),
        headers={"host": "grpc.test", "content-type": "application/grpc", "te": "trailers"},
        content=_frame(b"via-http1"),
        timeout=30,
    )
    assert response.status_code == 200
    assert response.http_version == "HTTP/1.1"
    assert response.headers["content-type"] == "application/grpc"
    assert response.content == _frame(b"echo:via-http1")


def _curl_h2(edge: Edge, host: str) -> tuple[str, str]:
    out = curl(
        "--http2-prior-knowledge",
        "-o",
        "/dev/null",
        "-D",
        "-",
        "-H",
        f"host: {host}",
        edge.url("/"),
    )
    lines = out.stdout.splitlines()
    errors = [line.split(":", 1)[1].strip() for line in lines if line.startswith("edgeward-error:")]
    return lines[0].strip() if lines else out.stderr, errors[0] if errors else ""


def test_an_upstream_that_is_down_is_a_clean_502(setup: tuple[Edge, Seen]) -> None:
    edge, _ = setup
    assert _curl_h2(edge, "down.test") == ("HTTP/2 502", "ERR_EDGEWARD_3006")
    with grpc.insecure_channel(
        f"127.0.0.1:{edge.ports['web']}", options=[("grpc.default_authority", "down.test")]
    ) as channel:
        with pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(_method("Unary"))(b"x", timeout=30)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_an_upstream_that_does_not_speak_h2_is_a_clean_502(setup: tuple[Edge, Seen]) -> None:
    edge, _ = setup
    assert _curl_h2(edge, "noth2.test") == ("HTTP/2 502", "ERR_EDGEWARD_3007")


def test_an_upstream_that_resets_the_stream_is_a_clean_502(setup: tuple[Edge, Seen]) -> None:
    edge, _ = setup
    for _ in range(3):  # the connection stays usable for the next streams
        assert _curl_h2(edge, "resets.test") == ("HTTP/2 502", "ERR_EDGEWARD_3007")
    assert "Traceback" not in edge.log_text()


def test_an_upstream_going_away_finishes_its_streams_and_the_rest_move_on(
    setup: tuple[Edge, Seen],
) -> None:
    """Every upstream connection takes three requests, then sends GOAWAY:
    the stream at its last stream id still gets its answer, and the one in
    flight above it is sent again on a new connection (two streams at a
    time: the retried one is among the next connection's first three)."""
    edge, _ = setup
    out = subprocess.run(
        [
            "h2load",
            "-n",
            "40",
            "-c",
            "1",
            "-m",
            "2",
            "-H",
            ":authority: goaway.test",
            edge.url("/"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "40 succeeded" in out.stdout, out.stdout
    assert "status codes: 40 2xx" in out.stdout, out.stdout
