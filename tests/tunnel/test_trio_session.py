"""The trio driver: our agent session against our edge session over real TLS
on loopback (trustme certificates). Windows as backpressure, many streams,
half-close, errors, heartbeats, the end of a session."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
from tunnel_support import (
    TOKEN,
    Handler,
    Tls,
    agent_ingress,
    connect_tls,
    make_tls,
    read_all,
)

from edgeward.tunnel.client import ClientSession
from edgeward.tunnel.errors import RpcError
from edgeward.tunnel.messages import (
    Auth,
    AuthExtra,
    Bind,
    BindResp,
    HttpOpts,
    ProxyHeader,
    StopTunnel,
    StreamType,
    TcpOpts,
)
from edgeward.tunnel.server import ServerSession
from edgeward.tunnel.trio_session import (
    ClientTunnel,
    ServerTunnel,
    TunnelStream,
    open_agent_session,
)

HEADER = ProxyHeader("ep-1", "192.0.2.10:54321", "https", "3")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


def run(test: Callable[[], Awaitable[None]], seconds: float = 30) -> None:
    async def main() -> None:
        with trio.fail_after(seconds):
            await test()

    trio.run(main)


async def bound_pair(
    tls: Tls,
    handler: Handler,
    port: int,
    nursery: trio.Nursery,
    session: ClientSession | None = None,
) -> tuple[ClientTunnel, ServerTunnel, BindResp]:
    """Our agent connected, authenticated, with `app.example.test` bound."""
    conn = await connect_tls(tls, port)
    client: ClientTunnel = await nursery.start(_hold_session, conn, session)
    await client.authenticate(Auth(extra=AuthExtra(authtoken=TOKEN, client_type="edgeward")))
    resp = await client.bind(Bind("https", HttpOpts(domain="app.example.test")))
    return client, handler.tunnels[-1], resp


async def _hold_session(
    conn: trio.SSLStream[trio.SocketStream],
    session: ClientSession | None,
    task_status: trio.TaskStatus[ClientTunnel] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with open_agent_session(conn, session=session) as client:
        task_status.started(client)
        await client.ended.wait()


def test_auth_bind_and_a_request_through_a_proxy_stream(tls: Tls) -> None:
    async def test() -> None:
        handler = Handler()
        async with agent_ingress(tls, handler) as port, trio.open_nursery() as nursery:
            client, server, resp = await bound_pair(tls, handler, port, nursery)
            assert resp.url == "https://app.example.test"
            assert handler.auths[0].extra.client_type == "edgeward"
            assert handler.binds[0].opts.requested_domain == "app.example.test"  # type: ignore[union-attr]

            agent_done = trio.Event()

            async def agent() -> None:
                header, stream = await client.accept()
                assert header == HEADER
                request = b""
                while not request.endswith(b"\r\n\r\n"):
                    request += await stream.receive_some()
                await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await stream.send_eof()
                assert await stream.receive_some() == b""  # the edge half-closed too
                await stream.aclose()
                agent_done.set()

            nursery.start_soon(agent)
            stream = await server.open_proxy(HEADER, b"GET / HTTP/1.1\r\nHost: app\r\n\r\n")
            response = await read_all(stream)
            assert response == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            assert not stream.dropped
            await stream.send_eof()
            await stream.aclose()
            await agent_done.wait()
            await client.aclose()
            nursery.cancel_scope.cancel()

    run(test)


def test_a_refused_authtoken_and_a_refused_bind_raise_rpc_errors(tls: Tls) -> None:
    async def test() -> None:
        handler = Handler()
        async with agent_ingress(tls, handler) as port:
            conn = await connect_tls(tls, port)
            async with open_agent_session(conn) as client:
                with pytest.raises(RpcError) as refused:
                    await client.authenticate(Auth(extra=AuthExtra(authtoken="wrong")))
                assert refused.value.error_code == "ERR_NGROK_107"
                await client.authenticate(Auth(extra=AuthExtra(authtoken=TOKEN)))
                handler.refuse_bind = RpcError("endpoint is already online", "ERR_NGROK_334")
                with pytest.raises(RpcError) as caught:
                    await client.bind(Bind("tcp", TcpOpts()))
                assert (caught.value.message, caught.value.error_code) == (
                    "endpoint is already online",
                    "ERR_NGROK_334",
                )

    run(test)


async def _echo(stream: TunnelStream) -> None:
    while data := await stream.receive_some(65536):
        await stream.send_all(data)
    await stream.send_eof()
    await stream.aclose()


def test_bulk_data_both_ways_through_the_windows(tls: Tls) -> None:
    """8 MiB each way on one stream (32 windows), written in pieces larger
    and smaller than a window, read back whole."""
    size = 8 * 1024 * 1024

    async def test() -> None:
        handler = Handler()
        async with agent_ingress(tls, handler) as port, trio.open_nursery() as nursery:
            client, server, _ = await bound_pair(tls, handler, port, nursery)

            async def agent() -> None:
                _, stream = await client.accept()
                await _echo(stream)

            nursery.start_soon(agent)
            stream = await server.open_proxy(HEADER)
            payload = bytes(range(256)) * (size // 256)
            got = hashlib.sha256()
            received = 0

            async def writer() -> None:
                view = memoryview(payload)
                for start, piece in _pieces(len(payload)):
                    await stream.send_all(view[start : start + piece])
                await stream.send_eof()

            async with trio.open_nursery() as inner:
                inner.start_soon(writer)
                while data := await stream.receive_some():
                    got.update(data)
                    received += len(data)
            assert received == size
            assert got.digest() == hashlib.sha256(payload).digest()
            await stream.aclose()
            nursery.cancel_scope.cancel()

    run(test, 120)


def _pieces(total: int) -> list[tuple[int, int]]:
    sizes = [1, 100, 70_000, 300_000, 1_000_000]
    out, start, n = [], 0, 0
    while start < total:
        piece = min(sizes[n % len(sizes)], total - start)
        out.append((start, piece))
        start += piece
        n += 1
    return out


def test_many_streams_at_once_on_one_session(tls: Tls) -> None:
    async def test() -> None:
        handler = Handler()
        async with agent_ingress(tls, handler) as port, trio.open_nursery() as nursery:
            client, server, _ = await bound_pair(tls, handler, port, nursery)

            async def agent() -> None:
                async with trio.open_nursery() as streams:
                    for _ in range(200):
                        _, stream = await client.accept()
                        streams.start_soon(_echo, stream)

            nursery.start_soon(agent)
            results: dict[int, bytes] = {}

            async def one(n: int) -> None:
                stream = await server.open_proxy(HEADER)
                message = b"stream %d " % n * (n * 50)
                async with trio.open_nursery() as both:
                    both.start_soon(_send_and_eof, stream, message)
                    results[n] = await read_all(stream)
                await stream.aclose()

            async with trio.open_nursery() as requests:
                for n in range(200):
                    requests.start_soon(one, n)
            assert all(results[n] == b"stream %d " % n * (n * 50) for n in range(200))
            nursery.cancel_scope.cancel()

    run(test, 120)


async def _send_and_eof(stream: TunnelStream, data: bytes) -> None:
    await stream.send_all(data)
    await stream.send_eof()


def test_a_stream_closed_by_us_refuses_more_data(tls: Tls) -> None:
    async def test() -> None:
        handler = Handler()
        async with agent_ingress(tls, handler) as port, trio.open_nursery() as nursery:
            client, server, _ = await bound_pair(tls, handler, port, nursery)
            stream = await server.open_proxy(HEADER, b"hello")
            _, agent_side = await client.accept()
            assert await agent_side.receive_some() == b"hello"
            await stream.aclose()  # FIN, and stop reading
            assert await agent_side.receive_some() == b""
            with pytest.raises(trio.BrokenResourceError):  # muxado: RST(STREAM_CLOSED)
                for _ in range(100):
                    await agent_side.send_all(b"x" * 1000)
                    await trio.sleep(0.01)
            with pytest.raises(trio.ClosedResourceError):
                await stream.receive_some()
            nursery.cancel_scope.cancel()

    run(test)


def test_reset_reaches_the_other_side(tls: Tls) -> None:
    async def test() -> None:
        handler = Handler()
        async with agent_ingress(tls, handler) as port, trio.open_nursery() as nursery:
            client, server, _ = await bound_pair(tls, handler, port, nursery)
            stream = await server.open_proxy(HEADER)
            _, agent_side = await client.accept()
            agent_side.reset()
            with pytest.raises(trio.BrokenResourceError) as caught:
                await stream.receive_some()
            assert "reset with error code 0x6" in str(caught.value)
            assert stream.dropped  # nothing past the header was read
            nursery.cancel_scope.cancel()

    run(test)


def test_the_end_of_the_session_fails_streams_and_calls(tls: Tls) -> None:
    async def test() -> None:
        handler = Handler()
        async with agent_ingress(tls, handler) as port, trio.open_nursery() as nursery:
            client, server, _ = await bound_pair(tls, handler, port, nursery)
            stream = await server.open_proxy(HEADER)
            _, agent_side = await client.accept()
            await server.aclose()  # GOAWAY: the agent ends its session, as the SDK does
            with pytest.raises(trio.BrokenResourceError):
                await agent_side.receive_some()
            await client.ended.wait()
            with pytest.raises(trio.BrokenResourceError):
                await client.accept()
            with pytest.raises(trio.BrokenResourceError):
                await client.bind(Bind("https", HttpOpts()))
            with pytest.raises(trio.BrokenResourceError):
                await stream.send_all(b"late")
            nursery.cancel_scope.cancel()

    run(test)


def test_stop_tunnel_reaches_the_agent_and_it_unbinds(tls: Tls) -> None:
    async def test() -> None:
        handler = Handler()
        async with agent_ingress(tls, handler) as port, trio.open_nursery() as nursery:
            client, server, resp = await bound_pair(tls, handler, port, nursery)
            server.stop_tunnel(StopTunnel(resp.id, "authtoken revoked", "ERR_NGROK_3200"))
            while not client.stopped:
                await trio.sleep(0.01)
            assert client.stopped[0].message == "authtoken revoked"
            assert client.proto.endpoints == {}
            with pytest.raises(KeyError):
                await server.open_proxy(HEADER)
            await client.unbind(resp.id)  # answered, though already gone
            nursery.cancel_scope.cancel()

    run(test)


def test_heartbeats_are_answered(tls: Tls) -> None:
    async def test() -> None:
        handler = Handler()
        session = ClientSession(heartbeat_interval=0.05, heartbeat_tolerance=5)
        async with agent_ingress(tls, handler) as port, trio.open_nursery() as nursery:
            client, _, _ = await bound_pair(tls, handler, port, nursery, session)
            beats = 0
            while beats < 3:
                client.heartbeat_latency = None
                while client.heartbeat_latency is None:
                    await trio.sleep(0.01)
                beats += 1
            assert not client.ended.is_set()
            nursery.cancel_scope.cancel()

    run(test)


def test_the_edge_drops_an_agent_that_stops_beating(tls: Tls, tmp_path: Path) -> None:
    """A raw agent that announces 0.1 s heartbeats and never sends one."""

    async def test() -> None:
        handler = Handler()
        async with agent_ingress(tls, handler) as port:
            conn = await connect_tls(tls, port)
            agent = ClientSession(heartbeat_interval=0.1, heartbeat_tolerance=0.1)
            agent.authenticate(Auth(extra=AuthExtra(authtoken=TOKEN)))  # no start(): no beats
            await conn.send_all(agent.data_to_send())
            while True:
                try:
                    data = await conn.receive_some()
                except trio.BrokenResourceError:  # closed without close_notify
                    break
                if not data:
                    break
                agent.receive_data(data, 0.0)
            assert handler.tunnels[0].heartbeat_timed_out

    run(test)


async def _raw_bind_without_fin(tls: Tls, port: int) -> trio.SSLStream[trio.SocketStream]:
    """A raw agent: Auth, then a Bind whose stream it never closes."""
    conn = await connect_tls(tls, port)
    agent = ClientSession()
    agent.authenticate(Auth(extra=AuthExtra(authtoken=TOKEN)))
    agent.mux.open_stream(StreamType.BIND, Bind("https", HttpOpts(domain="a.test")).encode())
    await conn.send_all(agent.data_to_send())
    return conn


def test_open_proxy_waits_for_a_grace_when_the_bind_stream_stays_open(tls: Tls) -> None:
    async def test() -> None:
        handler = Handler()
        sessions = lambda: ServerSession(ready_grace=0.2)  # noqa: E731
        async with agent_ingress(tls, handler, session=sessions) as port:
            conn = await _raw_bind_without_fin(tls, port)
            await handler.bound.wait()
            server = handler.tunnels[0]
            stream = await server.open_proxy(ProxyHeader("ep-1", "192.0.2.1:1", "https"))
            assert not server.proto.is_ready("ep-1")  # opened on the grace, not the FIN
            assert stream.stream_id == 2
            await conn.aclose()

    run(test)


def test_the_end_of_the_session_releases_open_proxy_waiters(tls: Tls) -> None:
    async def test() -> None:
        handler = Handler()
        sessions = lambda: ServerSession(ready_grace=3600)  # noqa: E731
        async with agent_ingress(tls, handler, session=sessions) as port:
            conn = await _raw_bind_without_fin(tls, port)
            await handler.bound.wait()
            server = handler.tunnels[0]
            failed = trio.Event()

            async def waiter() -> None:
                with pytest.raises(trio.BrokenResourceError):
                    await server.open_proxy(ProxyHeader("ep-1", "192.0.2.1:1", "https"))
                failed.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(waiter)
                await trio.sleep(0.05)
                await conn.aclose()  # the agent goes away
                await failed.wait()

    run(test)
