"""The trio server: listening sockets, accepting, per-connection protocol
choice (TLS + ALPN, h2c prior knowledge, HTTP/1.1), and the lifecycle:
SIGHUP reloads atomically, SIGTERM/SIGINT drain then stop."""

from __future__ import annotations

import errno
import itertools
import logging
import select
import signal
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

from edgeward.config import EdgeConfig, Endpoint, Listener
from edgeward.errors import EdgewardError
from edgeward.hooks import ConnectionInfo, EndpointInfo
from edgeward.http1.codec import Limits
from edgeward.proxy.accesslog import AccessLog
from edgeward.proxy.codecs import CodecKind, codec_factories
from edgeward.proxy.context import ConnContext, Generation, ListenerRuntime, Services, make_trust
from edgeward.proxy.fetch import Fetcher
from edgeward.proxy.http1 import Http1Connection
from edgeward.proxy.http2 import Http2Connection
from edgeward.proxy.routing import Router
from edgeward.proxy.tls import server_context, tls_info
from edgeward.proxy.transport import Transport, tls_handshake, tune

log = logging.getLogger("edgeward.proxy")

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def build_generation(config: EdgeConfig) -> Generation:
    """Everything derived from a config that connections read: routers,
    TLS contexts, the endpoint facts policies see. Fails before any swap."""
    runtimes = {}
    for listener in config.listeners:
        endpoints = tuple(e for e in config.endpoints if listener.name in e.listeners)
        ctx = server_context(listener.tls, http2=listener.http2) if listener.tls else None
        infos = {e.name: _endpoint_info(e, listener) for e in endpoints}
        listener_info = EndpointInfo(
            name=listener.name,
            url=f"{listener.scheme}://{listener.host}:{listener.port}",
            host=listener.host,
            port=listener.port,
            scheme=listener.scheme,
            id=f"listener:{listener.name}",
            upstream="",
        )
        runtimes[listener.name] = ListenerRuntime(
            listener, Router(endpoints), endpoints, ctx, infos, listener_info
        )
    return Generation(config, runtimes, make_trust(config))


def _endpoint_info(endpoint: Endpoint, listener: Listener) -> EndpointInfo:
    default_port = 443 if listener.tls else 80
    port = "" if listener.port == default_port else f":{listener.port}"
    return EndpointInfo(
        name=endpoint.name,
        url=f"{listener.scheme}://{endpoint.hostname}{port}",
        host=endpoint.hostname,
        port=listener.port,
        scheme=listener.scheme,
        id=f"endpoint:{endpoint.name}",
        upstream=endpoint.upstream.url,
        metadata=endpoint.metadata,
    )


@dataclass(slots=True)
class _Bound:
    sock: socket.socket
    listener: str
    scope: trio.CancelScope


class Server:
    """Serves one config (and its reloads) in the calling trio run."""

    def __init__(
        self,
        config: EdgeConfig,
        *,
        codec: CodecKind = "fast",
        reload: Callable[[], EdgeConfig] | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.gen = build_generation(config)
        limits = config.limits
        server_codec, client_codec = codec_factories(
            codec,
            Limits(
                max_header_bytes=limits.max_header_bytes, max_header_count=limits.max_header_count
            ),
        )
        access = config.access_log
        self.services = Services(
            server_codec, client_codec, AccessLog(access.path, enabled=access.enabled), Fetcher()
        )
        self._reload = reload
        self._reuse_port = reuse_port
        self._bound: dict[tuple[str, int], _Bound] = {}
        self._conn_ids = itertools.count(1)
        self._stop = trio.Event()
        self._count = 0
        self._slot_freed = trio.Event()
        self._idle_connections: set[Http1Connection] = set()
        self._h2_connections: set[Http2Connection] = set()
        self._nursery: trio.Nursery | None = None
        self.addresses: dict[str, tuple[str, int]] = {}

    # --- lifecycle ------------------------------------------------------------------

    async def serve(
        self, *, task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Bind, serve until `shutdown()` (or a signal), then drain."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._bind(self.gen.config)
            nursery.start_soon(self._housekeeping)
            nursery.start_soon(self.services.watchdog.run)
            task_status.started(self)
            log.info("edgeward: serving %s", self.gen.config.file)
            await self._stop.wait()
            await self._drain()
            nursery.cancel_scope.cancel()
        self.services.pools.close()
        self.services.access_log.close()

    async def handle_signals(self) -> None:
        """SIGHUP -> reload; SIGTERM/SIGINT -> graceful stop."""
        with trio.open_signal_receiver(signal.SIGHUP, signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    self.reload()
                else:
                    log.info("edgeward: %s, draining", signal.Signals(signum).name)
                    self.shutdown()
                    return

    def shutdown(self) -> None:
        self._stop.set()

    def reload(self) -> bool:
        """Load the config again; on any error keep the old one. New
        connections get the new generation; open ones keep theirs."""
        if self._reload is None:
            return False
        try:
            config = self._reload()
            gen = build_generation(config)
            self._bind(config, check_only=True)
        except (EdgewardError, OSError, ssl.SSLError) as exc:
            log.error("edgeward: reload rejected, keeping the running config: %s", exc)
            return False
        self.gen = gen
        self._bind(config)
        self.services.access_log.reconfigure(
            config.access_log.path, enabled=config.access_log.enabled
        )
        log.info("edgeward: reloaded %s", config.file)
        return True

    async def _drain(self) -> None:
        services = self.services
        services.draining = True
        for bound in self._bound.values():
            bound.scope.cancel()
            bound.sock.close()
        self._bound.clear()
        for conn in list(self._idle_connections):
            if conn.idle:
                conn.scope.cancel()
        for h2 in list(self._h2_connections):
            h2.start_drain()
        with trio.move_on_after(self.gen.config.timeouts.drain):
            while self._count:
                await self._slot_freed.wait()
        if self._count:
            log.warning("edgeward: drain timeout, closing %d connections", self._count)

    async def _housekeeping(self) -> None:
        while True:
            await trio.sleep(1)
            self.services.pools.expire()
            self.services.access_log.flush()

    # --- sockets ------------------------------------------------------------------

    def _bind(self, config: EdgeConfig, *, check_only: bool = False) -> None:
        wanted = {(ln.host, ln.port): ln.name for ln in config.listeners}
        new: list[tuple[tuple[str, int], socket.socket]] = []
        try:
            for address in wanted:
                if address not in self._bound:
                    new.append((address, self._listen(address)))
        except OSError:
            for _, sock in new:
                sock.close()
            raise
        if check_only:
            for _, sock in new:
                sock.close()
            return
        assert self._nursery is not None
        for address in list(self._bound):
            if address not in wanted:
                bound = self._bound.pop(address)
                bound.scope.cancel()
                bound.sock.close()
        for address, bound in self._bound.items():
            bound.listener = wanted[address]
        for address, sock in new:
            bound = _Bound(sock, wanted[address], trio.CancelScope())
            self._bound[address] = bound
            self._nursery.start_soon(self._accept_loop, bound)
        for bound in self._bound.values():
            self.addresses[bound.listener] = bound.sock.getsockname()[:2]
        for (host, port), name in wanted.items():
            log.info(
                "edgeward: listener %s on %s:%d",
                name,
                host,
                self.addresses[name][1] if port == 0 else port,
            )

    def _listen(self, address: tuple[str, int]) -> socket.socket:
        host, port = address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self._reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(1024)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    async def _accept_loop(self, bound: _Bound) -> None:
        lsock = bound.sock
        nursery = self._nursery
        assert nursery is not None
        with bound.scope:
            while True:
                limit = self.gen.config.limits.max_connections
                while self._count >= limit:
                    # full: new clients wait in the backlog; while one does,
                    # an idle keep-alive connection gives up its slot
                    self._slot_freed = trio.Event()
                    if _has_pending(lsock):
                        self._evict_idle()
                    with trio.move_on_after(0.25):
                        await self._slot_freed.wait()
                try:
                    sock, addr = lsock.accept()
                except BlockingIOError:
                    try:
                        await trio.lowlevel.wait_readable(lsock)
                    except trio.ClosedResourceError:
                        return
                    continue
                except OSError as exc:
                    if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                        log.warning("edgeward: accept failed (%s), backing off", exc)
                        await trio.sleep(0.1)
                        continue
                    if exc.errno in (errno.EBADF, errno.EINVAL):
                        return
                    continue
                self._count += 1
                nursery.start_soon(self._connection, sock, addr, bound.listener)

    def _evict_idle(self) -> None:
        """At the connection limit, an idle keep-alive connection makes room
        for a new client (as nginx reuses idle connections)."""
        for conn in self._idle_connections:
            if conn.idle:
                conn.scope.cancel()
                return

    # --- one connection -----------------------------------------------------------------

    async def _connection(
        self, sock: socket.socket, peer: tuple[str, int], listener_name: str
    ) -> None:
        transport: Transport | None = None
        try:
            gen = self.gen
            runtime = gen.listeners.get(listener_name)
            if runtime is None:
                return
            sock.setblocking(False)
            tune(sock)
            local = sock.getsockname()
            client_ip = peer[0].removeprefix("::ffff:")
            info = ConnectionInfo(
                id=f"c{next(self._conn_ids)}",
                listener=listener_name,
                client_ip=client_ip,
                client_port=peer[1],
                server_ip=local[0],
                server_port=local[1],
                started_at=time.time(),
            )
            ctx = ConnContext(self.services, gen, runtime, info, gen.trusted(client_ip))
            listener = runtime.listener
            if listener.policy is not None and not listener.policy.on_tcp_connect(
                info, runtime.listener_info
            ):
                return
            only = runtime.router.only
            if only is not None and only.policy is not None:
                ctx.tcp_checked.add(only.name)
                if not only.policy.on_tcp_connect(info, runtime.endpoint_infos[only.name]):
                    return
            alpn = None
            if runtime.ssl_context is not None:
                tls_sock = runtime.ssl_context.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                )
                sock = tls_sock
                with trio.move_on_after(gen.config.timeouts.header_read) as scope:
                    try:
                        await tls_handshake(tls_sock)
                    except (OSError, ssl.SSLError) as exc:
                        log.debug("TLS handshake with %s failed: %s", client_ip, exc)
                        return
                if scope.cancelled_caught:
                    return
                info.tls = tls_info(tls_sock)
                alpn = info.tls.alpn
                if not self._sni_connect_check(ctx, info.tls.server_name):
                    return
            transport = Transport(sock)
            await self._speak(ctx, transport, alpn)
        except Exception:
            log.exception("edgeward: connection failed")
        finally:
            if transport is not None:
                transport.close()
            else:
                sock.close()
            self._count -= 1
            self._slot_freed.set()

    def _sni_connect_check(self, ctx: ConnContext, server_name: str | None) -> bool:
        """With SNI the endpoint is known right after the handshake: run its
        on_tcp_connect before any request is read."""
        if not server_name:
            return True
        endpoint = ctx.runtime.router.route_name(server_name.lower())
        if endpoint is None or endpoint.policy is None or endpoint.name in ctx.tcp_checked:
            return True
        ctx.tcp_checked.add(endpoint.name)
        return endpoint.policy.on_tcp_connect(ctx.info, ctx.runtime.endpoint_infos[endpoint.name])

    async def _speak(self, ctx: ConnContext, transport: Transport, alpn: str | None) -> None:
        initial = b""
        if alpn is None and ctx.runtime.listener.http2 and ctx.runtime.ssl_context is None:
            # cleartext: HTTP/2 with prior knowledge starts with the preface
            with trio.move_on_after(ctx.config.timeouts.header_read):
                try:
                    initial = await transport.recv()
                    while (
                        initial
                        and len(initial) < len(H2_PREFACE)
                        and H2_PREFACE.startswith(initial)
                    ):
                        more = await transport.recv()
                        if not more:
                            break
                        initial += more
                except OSError:
                    return
            if not initial:
                return
            if initial.startswith(H2_PREFACE):
                alpn = "h2"
        if alpn == "h2":
            h2conn = Http2Connection(ctx, transport)
            self._h2_connections.add(h2conn)
            try:
                await h2conn.run(initial)
            finally:
                self._h2_connections.discard(h2conn)
            return
        conn = Http1Connection(ctx, transport, self.services.server_codec())
        self._idle_connections.add(conn)
        try:
            await conn.run(initial)
        finally:
            self._idle_connections.discard(conn)


def _has_pending(lsock: socket.socket) -> bool:
    """Whether a listening socket has a connection waiting to be accepted."""
    ready, _, _ = select.select([lsock], [], [], 0)
    return bool(ready)
