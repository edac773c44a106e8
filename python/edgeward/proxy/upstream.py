"""The upstream side: HTTP/1.1 connections to one upstream, kept alive in a
bounded pool with idle expiry; `Pools` holds them and the HTTP/2 ones
(`upstream_h2.H2UpstreamPool`) for every upstream of the config."""

from __future__ import annotations

import hashlib
import ssl
import time
from typing import Protocol

import trio

from edgeward.config import EdgeConfig, Upstream
from edgeward.errors import EdgewardError
from edgeward.http1.codec import Codec
from edgeward.http1.events import LocalProtocolError
from edgeward.proxy.codecs import CodecFactory
from edgeward.proxy.dial import client_context, dial
from edgeward.proxy.transport import Transport
from edgeward.proxy.upstream_h2 import H2UpstreamPool


class Pool(Protocol):
    """What the exchange forwards through: an `UpstreamPool`, or the Proxy
    streams of an agent's endpoint (`agent_upstream.AgentPool`)."""

    def take(self) -> UpstreamConnection | None:
        """An idle connection that is still good, or None."""
        ...

    async def open(self) -> UpstreamConnection:
        """A new connection; raises `errors.UpstreamFailure`."""
        ...

    def release(self, conn: UpstreamConnection) -> None:
        """Back to the pool after a clean exchange (or closed)."""
        ...


class UpstreamConnection:
    __slots__ = ("codec", "idle_since", "reused", "transport")

    def __init__(self, transport: Transport, codec: Codec) -> None:
        self.transport = transport
        self.codec = codec
        self.reused = False
        self.idle_since = 0.0


class UpstreamPool:
    """Idle connections to one upstream, most recently used first (so the
    least used ones age out). `acquire` never blocks on the pool: when none
    is idle a new connection is made; `release` keeps at most `size`."""

    def __init__(
        self,
        upstream: Upstream,
        codec_factory: CodecFactory,
        *,
        size: int,
        idle_timeout: float,
        connect_timeout: float,
    ) -> None:
        self.upstream = upstream
        self._codec_factory = codec_factory
        self._size = size
        self._idle_timeout = idle_timeout
        self._connect_timeout = connect_timeout
        self._idle: list[UpstreamConnection] = []  # oldest first
        self._ssl: ssl.SSLContext | None = (
            client_context(upstream) if upstream.scheme == "https" else None
        )

    def take(self) -> UpstreamConnection | None:
        """The most recently used idle connection that is still good, or None.

        Every reuse is probed (one non-blocking read): a connection the
        upstream closed is dropped, and so is one on which it sent anything
        while idle. Bytes before our request are never an answer to it (an
        injected second response, a late body); reading them as one would
        hand one client's response to the next (pool poisoning)."""
        idle = self._idle
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if now - conn.idle_since < self._idle_timeout and conn.transport.quiet():
                conn.reused = True
                return conn
            conn.transport.close()
        return None

    async def acquire(self) -> UpstreamConnection:
        """An idle connection, else a new one."""
        return self.take() or await self.open()

    async def open(self) -> UpstreamConnection:
        sock = await dial(self.upstream, self._ssl, self._connect_timeout)
        return UpstreamConnection(Transport(sock), self._codec_factory())

    def release(self, conn: UpstreamConnection) -> None:
        """Return a connection whose exchange completed cleanly. One that
        holds unread bytes after the complete response (a second response
        injected by the upstream, a body to a HEAD) is closed, never reused:
        those bytes would be read as the next client's answer."""
        codec = conn.codec
        if len(self._idle) >= self._size or not codec.keep_alive or codec.trailing_data[0]:
            conn.transport.close()
            return
        try:
            codec.start_next_cycle()
        except LocalProtocolError:  # e.g. a close-delimited response
            conn.transport.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.append(conn)

    # (Pools applies a reload through these two)
    def reconfigure(self, *, size: int, idle_timeout: float, connect_timeout: float) -> None:
        """New limits in place: the warm connections stay (up to `size`)."""
        self._size = size
        self._idle_timeout = idle_timeout
        self._connect_timeout = connect_timeout
        idle = self._idle
        while len(idle) > size:
            idle.pop(0).transport.close()  # the oldest go first

    def retire(self) -> None:
        """Replaced by a reload: close the idle connections; those still
        in use are closed when released (a size of 0 keeps none)."""
        self._size = 0
        self.close()

    def expire(self) -> None:
        """Close connections idle for longer than the idle timeout."""
        limit = time.monotonic() - self._idle_timeout
        idle = self._idle
        stale = 0
        while stale < len(idle) and idle[stale].idle_since < limit:
            idle[stale].transport.close()
            stale += 1
        del idle[:stale]

    def close(self) -> None:
        while self._idle:
            self._idle.pop().transport.close()


class UpstreamCaError(EdgewardError):
    """An upstream's CA file cannot be read or holds no certificate."""


class Pools:
    """One pool per upstream, shared by every config generation so a
    reload keeps warm connections.

    A reload applies in two steps, so a bad CA file rejects it before
    anything changes: `prepare` reads each upstream's CA file and builds
    the pools that must be new (an upstream not seen before, or whose CA
    file's content changed: a rotated CA must verify the next
    connections, and the warm ones were verified by the old one);
    `apply` swaps them in, retires the replaced pools and gives every
    kept pool the new size and timeouts in place (its warm connections
    stay)."""

    def __init__(self, codec_factory: CodecFactory) -> None:
        self._codec_factory = codec_factory
        self._pools: dict[Upstream, tuple[AnyPool, bytes]] = {}  # and the CA's digest
        self.nursery: trio.Nursery | None = None
        """Where HTTP/2 upstream connections run their tasks (the server's, while it serves)."""

    def prepare(self, config: EdgeConfig) -> PoolPlan:
        """Raises `UpstreamCaError` (an unreadable or bad CA file)."""
        limits, timeouts = config.limits, config.timeouts
        plan: PoolPlan = {}
        for endpoint in config.endpoints:
            up = endpoint.upstream
            if up in plan:
                continue
            try:
                ca = hashlib.sha256(up.tls_ca.read_bytes()).digest() if up.tls_ca else b""
                known = self._pools.get(up)
                pool: AnyPool
                if known is not None and known[1] == ca:
                    pool = known[0]
                elif up.protocol == "http2":
                    pool = H2UpstreamPool(
                        up,
                        self._nursery,
                        idle_timeout=timeouts.upstream_idle,
                        connect_timeout=timeouts.upstream_connect,
                    )
                else:
                    pool = UpstreamPool(
                        up,
                        self._codec_factory,
                        size=limits.upstream_pool_size,
                        idle_timeout=timeouts.upstream_idle,
                        connect_timeout=timeouts.upstream_connect,
                    )
            except OSError as exc:  # ssl.SSLError is one
                raise UpstreamCaError(
                    f"endpoint {endpoint.name}: upstream CA file {up.tls_ca}: {exc}"
                ) from None
            plan[up] = (pool, ca)
        return plan

    def _nursery(self) -> trio.Nursery | None:
        return self.nursery

    def apply(self, plan: PoolPlan, config: EdgeConfig) -> dict[str, AnyPool]:
        """Swap in a prepared plan; the pools of `config`'s endpoints by name."""
        for up, (pool, _) in self._pools.items():
            if up not in plan or plan[up][0] is not pool:
                pool.retire()
        limits, timeouts = config.limits, config.timeouts
        for pool, _ in plan.values():
            pool.reconfigure(
                size=limits.upstream_pool_size,
                idle_timeout=timeouts.upstream_idle,
                connect_timeout=timeouts.upstream_connect,
            )
        self._pools = dict(plan)
        return {e.name: plan[e.upstream][0] for e in config.endpoints}

    def expire(self) -> None:
        for pool, _ in self._pools.values():
            pool.expire()

    def close(self) -> None:
        for pool, _ in self._pools.values():
            pool.close()


AnyPool = UpstreamPool | H2UpstreamPool
PoolPlan = dict[Upstream, tuple[AnyPool, bytes]]
