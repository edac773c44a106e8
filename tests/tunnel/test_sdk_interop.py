"""Interop with the official `ngrok` Python SDK from PyPI (a Rust core nobody
here wrote): it connects to a test agent ingress built from this package
(trio, a trustme certificate, `serve_agent`), authenticates, binds an HTTP
endpoint and forwards the Proxy streams we open to a local upstream. Where
it disagrees with our agent, it is right.

On Python 3.11 pip installs SDK 1.4.0 (domain in `Opts.Hostname`); 1.7.0
needs Python 3.12 (`Opts.Domain`).
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from tunnel_support import (
    HERE,
    TOKEN,
    Handler,
    Tls,
    agent_ingress,
    http_upstream,
    make_tls,
    read_all,
)

from edgeward.tunnel.messages import HttpOpts, ProxyHeader, StopTunnel

SDK_VERSION = importlib.metadata.version("ngrok")
DOMAIN = "app.example.test"
REQUEST = b"GET /hello?x=1 HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


def run(test: Callable[[], Awaitable[None]], seconds: float = 60) -> None:
    async def main() -> None:
        with trio.fail_after(seconds):
            await test()

    trio.run(main)


@asynccontextmanager
async def sdk_agent(
    tls: Tls, port: int, upstream: str, token: str = TOKEN
) -> AsyncIterator[dict[str, Any]]:
    """The SDK in its own process; yields the JSON line it printed."""
    options = {
        "server_addr": f"localhost:{port}",
        "root_cas": str(tls.ca_file),
        "authtoken": token,
        "domain": DOMAIN,
        "upstream": upstream,
    }
    process = await trio.lowlevel.open_process(
        [sys.executable, str(HERE / "sdk_agent.py"), json.dumps(options)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stdin is not None
    try:
        line = b""
        while not line.endswith(b"\n"):
            chunk = await process.stdout.receive_some()
            assert chunk, f"the SDK agent exited ({process.returncode})"
            line += chunk
        yield json.loads(line)
    finally:
        await process.stdin.aclose()
        with trio.move_on_after(5):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_the_sdk_authenticates_binds_and_serves_requests(tls: Tls) -> None:
    async def test() -> None:
        handler = Handler()
        async with (
            http_upstream() as up,
            agent_ingress(tls, handler) as port,
            sdk_agent(tls, port, f"http://127.0.0.1:{up}") as sdk,
        ):
            # what the SDK sent
            (auth,) = handler.auths
            assert auth.extra.authtoken == TOKEN
            assert auth.extra.client_type == "ngrok-python"
            assert auth.extra.version == SDK_VERSION
            assert auth.extra.heartbeat_interval == 10_000_000_000  # nanoseconds
            assert auth.version == ["3", "2"]
            (bind,) = handler.binds
            assert bind.proto == "https"
            assert bind.forwards_to == f"http://127.0.0.1:{up}/"
            assert isinstance(bind.opts, HttpOpts)
            assert bind.opts.requested_domain == DOMAIN
            if SDK_VERSION == "1.4.0":
                assert (bind.opts.hostname, bind.opts.domain) == (DOMAIN, "")
            # what it made of our answers: listener.url() is BindResp.URL verbatim
            assert sdk == {"url": f"https://{DOMAIN}", "id": "ep-1"}
            # its heartbeat stream, opened at session start, first beat at once
            tunnel = handler.tunnels[0]
            while tunnel.proto.last_heartbeat is None:
                await trio.sleep(0.01)
            # the data path: requests through Proxy streams, one after another and at once
            header = ProxyHeader("ep-1", "192.0.2.10:54321", "https", "3")
            for _ in range(3):
                stream = await tunnel.open_proxy(header, REQUEST)
                response = await read_all(stream)
                assert response.startswith(b"HTTP/1.1 200 OK\r\n")
                assert response.endswith(b"upstream saw: GET /hello?x=1 0")
                assert not stream.dropped
                await stream.aclose()
            responses: list[bytes] = []

            async def post(n: int) -> None:
                body = b"x" * (n * 40_000)  # up to several windows
                head = b"POST /p%d HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % (
                    n,
                    len(body),
                )
                stream = await tunnel.open_proxy(header, head)
                await stream.send_all(body)
                responses.append(await read_all(stream))
                await stream.aclose()

            async with trio.open_nursery() as nursery:
                for n in range(20):
                    nursery.start_soon(post, n)
            assert sorted(r.rsplit(b" ", 2)[-2:][0] for r in responses) == sorted(
                b"/p%d" % n for n in range(20)
            )
            assert all(
                r.endswith(b" %d" % (int(r.rsplit(b"/p", 1)[1].split()[0]) * 40_000))
                for r in responses
            )

    run(test)


def test_a_wrong_authtoken_fails_the_sdks_connect_with_our_error(tls: Tls) -> None:
    async def test() -> None:
        handler = Handler()
        async with (
            agent_ingress(tls, handler) as port,
            sdk_agent(tls, port, "http://127.0.0.1:1", token="not-the-token") as sdk,
        ):
            assert sdk["error"][0] == "failed to connect session"
            assert "authentication failed: unknown authtoken" in sdk["error"][1]
            assert "ERR_NGROK_107" in json.dumps(sdk["error"])
            assert handler.binds == []

    run(test)


def test_a_refused_bind_fails_the_sdks_listen_with_our_error(tls: Tls) -> None:
    async def test() -> None:
        from edgeward.tunnel.errors import RpcError

        handler = Handler(refuse_bind=RpcError("endpoint is already online", "ERR_NGROK_334"))
        async with (
            agent_ingress(tls, handler) as port,
            sdk_agent(tls, port, "http://127.0.0.1:1") as sdk,
        ):
            assert sdk["error"][0] == "failed to start listener"
            assert sdk["error"][1:] == ["endpoint is already online", "ERR_NGROK_334"]

    run(test)


def test_a_down_upstream_gives_a_502_or_a_stream_dropped_unread(tls: Tls) -> None:
    """Newer SDKs write a 502 page themselves; 1.4.0 closes the stream
    without reading the request, which the edge sees as `dropped`."""

    async def test() -> None:
        handler = Handler()
        async with (
            agent_ingress(tls, handler) as port,
            sdk_agent(tls, port, "http://127.0.0.1:1") as sdk,
        ):
            stream = await handler.tunnels[0].open_proxy(
                ProxyHeader(sdk["id"], "192.0.2.10:1", "https"), REQUEST
            )
            response = await read_all(stream)
            if SDK_VERSION == "1.4.0":
                assert response == b""
                assert stream.dropped
            else:
                assert response.startswith(b"HTTP/1.1 502")

    run(test)


def test_a_proxy_stream_for_an_id_the_sdk_does_not_know_is_dropped(tls: Tls) -> None:
    # the same thing the SDK does to a stream that comes before it read the BindResp
    async def test() -> None:
        handler = Handler()
        async with (
            http_upstream() as up,
            agent_ingress(tls, handler) as port,
            sdk_agent(tls, port, f"http://127.0.0.1:{up}"),
        ):
            tunnel = handler.tunnels[0]
            unknown = ProxyHeader("ep-unknown", "192.0.2.10:1", "https")
            stream = await tunnel.open_proxy(unknown, REQUEST, wait=False)
            assert await read_all(stream) == b""
            assert stream.dropped  # safe to retry: nothing reached the upstream
            retry = await tunnel.open_proxy(ProxyHeader("ep-1", "192.0.2.10:1", "https"), REQUEST)
            assert (await read_all(retry)).endswith(b"upstream saw: GET /hello?x=1 0")
            assert not retry.dropped

    run(test)


def test_stop_tunnel_makes_the_sdk_close_the_listener(tls: Tls) -> None:
    """The SDK forgets the endpoint (a Proxy stream for it is now dropped
    unread); 1.7.0 was seen to send Unbind after it, 1.4.0 does not."""

    async def test() -> None:
        handler = Handler()
        async with (
            http_upstream() as up,
            agent_ingress(tls, handler) as port,
            sdk_agent(tls, port, f"http://127.0.0.1:{up}"),
        ):
            tunnel = handler.tunnels[0]
            tunnel.stop_tunnel(StopTunnel("ep-1", "authtoken revoked", "ERR_NGROK_3200"))
            header = ProxyHeader("ep-1", "192.0.2.10:1", "https")
            stream = await tunnel.open_proxy(header, REQUEST, wait=False)
            assert await read_all(stream) == b""
            assert stream.dropped
            if SDK_VERSION != "1.4.0":
                await handler.wait_for(lambda: handler.unbound_ids == ["ep-1"])

    run(test)


def test_after_goaway_the_sdk_reconnects_and_binds_again(tls: Tls) -> None:
    async def test() -> None:
        handler = Handler()
        async with (
            http_upstream() as up,
            agent_ingress(tls, handler) as port,
            sdk_agent(tls, port, f"http://127.0.0.1:{up}"),
        ):
            await handler.tunnels[0].aclose()
            await handler.wait_for(lambda: len(handler.binds) == 2)
            # Auth with the old session id, Bind with the old endpoint id and token
            assert handler.auths[1].client_id == "sess-1"
            assert handler.binds[1].id == "ep-1"
            assert handler.binds[1].extra.token == "tok-1"
            stream = await handler.tunnels[1].open_proxy(
                ProxyHeader("ep-1", "192.0.2.10:1", "https"), REQUEST
            )
            assert (await read_all(stream)).endswith(b"upstream saw: GET /hello?x=1 0")

    run(test, 90)
