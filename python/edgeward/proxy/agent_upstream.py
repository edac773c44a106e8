"""The upstream of an endpoint an agent published: Proxy streams of the
agent's tunnel session instead of TCP connections.

`AgentPool` has the pool's interface (`take`, `open`, `release`), so the
exchange forwards to an agent exactly as to any upstream: it writes the
request with its HTTP/1.1 codec and reads the answer, the only difference
being under `TunnelTransport`. A stream is kept alive like a pooled
connection (the agent keeps its own connection to its upstream for it), and
is never reused when anything is unread on it.

With several agents (pooling), each request goes to one picked at random.
An endpoint whose agents are all gone (the grace window) fails at once with
503 ERR_EDGEWARD_3209; a session that cannot take a new stream with 502
ERR_EDGEWARD_3210.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import trio

from edgeward.agents.registry import EDGE_TYPES, Binding, Published
from edgeward.proxy import errors
from edgeward.proxy.codecs import CodecFactory
from edgeward.proxy.transport import Transport
from edgeward.proxy.upstream import UpstreamConnection
from edgeward.tunnel.messages import ProxyHeader
from edgeward.tunnel.trio_session import ServerTunnel, TunnelStream

if TYPE_CHECKING:
    from edgeward.hooks import ConnectionInfo

_STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, KeyError)


class TunnelTransport(Transport):
    """A Proxy stream behind the transport interface the exchange and the
    upgrade relay use (`recv`, `recv_reply`, `send`, `close`,
    `shutdown_write`). Errors are `OSError`s, as a socket's would be."""

    __slots__ = ("stream",)

    def __init__(self, stream: TunnelStream) -> None:  # no socket: Transport.__init__ not used
        self.stream = stream
        self.closed = False
        self.send_timeout = None

    async def recv(self, size: int = 256 * 1024) -> bytes:
        try:
            return await self.stream.receive_some(size)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionResetError(f"agent stream: {exc}") from None

    recv_reply = recv  # a stream's read never fails for want of bytes: nothing to save

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionResetError(f"agent stream: {exc}") from None

    def shutdown_write(self) -> None:
        self.stream.end()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.stream.close()

    def reset(self) -> None:
        if not self.closed:
            self.closed = True
            self.stream.reset()

    @property
    def tls(self) -> None:
        return None


class AgentConnection(UpstreamConnection):
    __slots__ = ("binding",)

    def __init__(self, transport: TunnelTransport, codec: Any, binding: Binding[Any]) -> None:
        super().__init__(transport, codec)
        self.binding = binding


class AgentPool:
    """Proxy streams to the agents of one published endpoint; the idle ones
    kept per agent, most recently used last."""

    def __init__(
        self,
        published: Published[ServerTunnel],
        codec_factory: CodecFactory,
        info: ConnectionInfo | None,
        *,
        size: int,
        idle_timeout: float,
    ) -> None:
        self.published = published
        self._codec_factory = codec_factory
        self._size = size
        self._idle_timeout = idle_timeout
        self._idle: dict[int, list[AgentConnection]] = {}  # by id(binding)
        self.client: ConnectionInfo | None = info

    def take(self, client: ConnectionInfo | None = None) -> AgentConnection | None:
        binding = self.published.pick()
        if binding is None:
            return None
        idle = self._idle.get(id(binding))
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            transport = conn.transport
            assert isinstance(transport, TunnelTransport)
            if (
                now - conn.idle_since < self._idle_timeout
                and conn.binding is binding
                and not binding.session.closed
                and transport.stream.usable
            ):
                conn.reused = True
                return conn
            transport.close()
        return None

    async def open(self, client: ConnectionInfo | None = None) -> AgentConnection:
        binding = self.published.pick()
        if binding is None:
            raise errors.UpstreamFailure(errors.AGENT_OFFLINE, self.published.url)
        info = client or self.client
        address = f"{info.client_ip}:{info.client_port}" if info is not None else "0.0.0.0:0"
        header = ProxyHeader(
            binding.id, address, binding.proto, EDGE_TYPES.get(self.published.kind, "")
        )
        tunnel = binding.session.handle
        try:
            stream = await tunnel.open_proxy(header)
        except _STREAM_ERRORS as exc:
            raise errors.UpstreamFailure(errors.AGENT_UNREACHABLE, str(exc)) from None
        return AgentConnection(TunnelTransport(stream), self._codec_factory(), binding)

    def release(self, conn: UpstreamConnection) -> None:
        assert isinstance(conn, AgentConnection)
        transport = conn.transport
        assert isinstance(transport, TunnelTransport)
        codec = conn.codec
        binding = conn.binding
        idle = self._idle.setdefault(id(binding), [])
        if (
            len(idle) >= self._size
            or binding.session.closed
            or binding not in self.published.members
            or not codec.keep_alive
            or codec.trailing_data[0]
            or not transport.stream.usable
        ):
            transport.close()
            return
        try:
            codec.start_next_cycle()
        except Exception:  # a close-delimited response
            transport.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def expire(self) -> None:
        limit = time.monotonic() - self._idle_timeout
        members = {id(b) for b in self.published.members}
        for key, idle in list(self._idle.items()):
            if key not in members:
                for conn in idle:
                    conn.transport.close()
                del self._idle[key]
                continue
            stale = 0
            while stale < len(idle) and (
                idle[stale].idle_since < limit or not idle[stale].transport.stream.usable  # type: ignore[attr-defined]
            ):
                idle[stale].transport.close()
                stale += 1
            del idle[:stale]

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.transport.close()
        self._idle.clear()
