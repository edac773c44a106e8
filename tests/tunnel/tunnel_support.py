"""Helpers of the tunnel tests: in-memory session pairs, a TLS agent ingress
built from the package (trio + a trustme certificate), an HTTP upstream."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import trio
import trustme

from edgeward.tunnel import frames
from edgeward.tunnel.client import ClientSession
from edgeward.tunnel.errors import RpcError
from edgeward.tunnel.messages import Auth, AuthResp, Bind, BindResp
from edgeward.tunnel.server import ServerSession
from edgeward.tunnel.trio_session import ServerTunnel, serve_agent

HERE = Path(__file__).resolve().parent
TOKEN = "edgeward-test-token"


def frame_list(data: bytes) -> list[frames.Frame]:
    """Every frame in `data` (which must hold whole frames)."""
    decoder = frames.FrameDecoder()
    out = list(decoder.feed(data))
    assert decoder.buffered == 0
    return out


def pump(client: ClientSession, server: ServerSession, now: float = 0.0) -> list[tuple[str, Any]]:
    """Move bytes both ways until quiet; events tagged "C" (client) or "S"."""
    events: list[tuple[str, Any]] = []
    while True:
        to_server = client.data_to_send()
        to_client = server.data_to_send()
        if not to_server and not to_client:
            return events
        if to_server:
            events += [("S", e) for e in server.receive_data(to_server, now)]
        if to_client:
            events += [("C", e) for e in client.receive_data(to_client, now)]


# --- TLS ------------------------------------------------------------------------------


@dataclass
class Tls:
    ca: trustme.CA
    ca_file: Path
    server: ssl.SSLContext
    client: ssl.SSLContext


def make_tls(directory: Path) -> Tls:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return Tls(ca, ca_file, server, client)


# --- an agent ingress for tests ----------------------------------------------------------------


@dataclass
class Handler:
    """Accepts `TOKEN` (or any token when `token` is None) and every bind,
    naming endpoints ep-1, ep-2, ... (a re-bind keeps its id)."""

    token: str | None = TOKEN
    auths: list[Auth] = field(default_factory=list)
    binds: list[Bind] = field(default_factory=list)
    unbound_ids: list[str] = field(default_factory=list)
    tunnels: list[ServerTunnel] = field(default_factory=list)
    bound: trio.Event = field(default_factory=trio.Event)
    changed: trio.Event = field(default_factory=trio.Event)
    refuse_bind: RpcError | None = None

    def _changed(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    async def authenticate(self, tunnel: ServerTunnel, auth: Auth) -> AuthResp:
        self.auths.append(auth)
        self.tunnels.append(tunnel)
        self._changed()
        if self.token is not None and auth.extra.authtoken != self.token:
            raise RpcError("authentication failed: unknown authtoken", "ERR_NGROK_107")
        return AuthResp("3", auth.client_id or f"sess-{len(self.auths)}")

    async def bind(self, tunnel: ServerTunnel, bind: Bind) -> BindResp:
        self.binds.append(bind)
        self._changed()
        if self.refuse_bind is not None:
            raise self.refuse_bind
        endpoint = bind.id or f"ep-{len(self.binds)}"
        host = getattr(bind.opts, "requested_domain", "") or "tcp.example.test:20000"
        scheme = "tcp" if bind.proto == "tcp" else bind.proto
        self.bound.set()
        return BindResp(endpoint, f"{scheme}://{host}", bind.proto, bind.opts, token="tok-1")

    async def unbound(self, tunnel: ServerTunnel, endpoint_id: str) -> None:
        self.unbound_ids.append(endpoint_id)
        self._changed()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self.changed.wait()


@asynccontextmanager
async def agent_ingress(
    tls: Tls, handler: Handler, *, session: Callable[[], ServerSession] = ServerSession
) -> AsyncIterator[int]:
    """A TLS listener on 127.0.0.1 running one `serve_agent` per connection;
    yields its port."""

    async def on_connection(tcp: trio.SocketStream) -> None:
        stream = trio.SSLStream(tcp, tls.server, server_side=True)
        try:
            await stream.do_handshake()
        except (trio.BrokenResourceError, ssl.SSLError):
            return
        await serve_agent(stream, handler, session=session())

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, host="127.0.0.1"), on_connection, 0)
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


async def connect_tls(tls: Tls, port: int) -> trio.SSLStream[trio.SocketStream]:
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    stream = trio.SSLStream(tcp, tls.client, server_hostname="localhost")
    await stream.do_handshake()
    return stream


# --- an HTTP/1.1 upstream ----------------------------------------------------------------------


@asynccontextmanager
async def http_upstream() -> AsyncIterator[int]:
    """Answers each request with `upstream saw: <method> <target> <body
    length>` and closes (Connection: close); yields its port."""

    async def serve(stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some()
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = await stream.receive_some()
            if not chunk:
                return
            body += chunk
        method, target = lines[0].split(b" ")[:2]
        text = b"upstream saw: %s %s %d" % (method, target, len(body))
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (len(text), text)
        )
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, host="127.0.0.1"), serve, 0)
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


async def read_all(stream: trio.abc.ReceiveStream) -> bytes:
    data = b""
    while chunk := await stream.receive_some():
        data += chunk
    return data
