"""The agents' side of the edge (docs/agents.md): the agent ingress (a TLS
listener of its own that agents keep one connection to), authentication
against the authtoken snapshot, binds decided by `edgeward.agents.Registry`,
the tcp endpoints' listeners, SNI passthrough to tls endpoints, and the
pools of Proxy streams the exchange forwards http endpoints' requests to.

Sessions run on the proxy's own transport (`proxy.transport`: stdlib TLS on
a non-blocking socket, one system call and no reschedule per ready
operation) under `tunnel.trio_session`, through a three-line adapter.

The authtoken snapshot is reloaded by the store's watcher (every 250 ms):
the sessions of a revoked (or changed) authtoken are disconnected and their
endpoints withdrawn at once, well within a second of the revocation.

Built only when edge.yml has `agent_ingress:` (the state store, and
SQLAlchemy with it, is imported here and nowhere else in `edgeward serve`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import trio

from edgeward.agents import events as ev
from edgeward.agents.events import AgentEvent, AgentEvents
from edgeward.agents.registry import (
    EDGE_TYPES,
    AgentSession,
    Published,
    Registry,
    ServedListener,
    Settings,
)
from edgeward.agents.sni import NEED_MORE, client_hello_sni
from edgeward.agents.targets import Kind
from edgeward.authtokens.snapshot import Snapshot, load
from edgeward.config import (
    EdgeConfig,
    Endpoint,
    ListenerTls,
    PolicyFactory,
    PolicySource,
    parse_document,
)
from edgeward.control import Restrictions
from edgeward.errors import ConfigError, EdgewardError, Location
from edgeward.hookdriver import drive
from edgeward.hooks import (
    ConnectionInfo,
    Effect,
    EffectResult,
    EndpointInfo,
    InternalError,
    PolicyHooks,
    TerminateTls,
    TlsTerminated,
    needs_io,
)
from edgeward.proxy import errors
from edgeward.proxy.agent_upstream import AgentPool, TunnelTransport
from edgeward.proxy.codecs import CodecFactory
from edgeward.proxy.tls import server_context, terminating_context, tls_info
from edgeward.proxy.transport import Transport, TransportStream, tls_handshake, tune
from edgeward.store import Store, statedir
from edgeward.store.trio_adapter import AsyncStore
from edgeward.tunnel.errors import RpcError
from edgeward.tunnel.messages import (
    Auth,
    AuthResp,
    AuthRespExtra,
    Bind,
    BindResp,
    ProxyHeader,
    StreamType,
)
from edgeward.tunnel.trio_session import ServerTunnel, serve_agent

log = logging.getLogger("edgeward.agents")

HANDSHAKE_TIMEOUT = 10.0
STOP_ANSWER_TIMEOUT = 2.0  # an agent's answer to Stop, before it is disconnected anyway
ERR_IP_RESTRICTED = "ERR_NGROK_115"  # ngrok's: the agent's address is not allowed to start sessions


@dataclass(slots=True)
class _TcpListener:
    sock: socket.socket
    port: int
    scope: trio.CancelScope


class AgentPoolView:
    """An `AgentPool` seen from one client connection (its address goes in
    the Proxy header of the streams it opens)."""

    __slots__ = ("client", "pool")

    def __init__(self, pool: AgentPool, client: ConnectionInfo) -> None:
        self.pool = pool
        self.client = client

    def take(self) -> Any:
        return self.pool.take()

    async def open(self) -> Any:
        return await self.pool.open(self.client)

    def release(self, conn: Any) -> None:
        self.pool.release(conn)


class AgentService:
    """Agents for one `edgeward serve`: built at start (a store or port
    problem is a one-line startup error), served by `serve`."""

    def __init__(
        self,
        config: EdgeConfig,
        codec_factory: CodecFactory,
        policy_factory: PolicyFactory | None,
        listener_addresses: dict[str, tuple[str, int]],
        static_owner: Callable[[str, str], str | None],
    ) -> None:
        ingress = config.agent_ingress
        assert ingress is not None
        self.config = config
        self._codec_factory = codec_factory
        self._policy_factory = policy_factory
        logging.getLogger("alembic").setLevel(logging.WARNING)  # its info lines say nothing here
        self.store = Store.open(statedir.resolve(config.state_dir), url=config.store_url)
        self.snapshot: Snapshot = load(self.store)
        self.events = AgentEvents(config.events)
        self.registry: Registry[ServerTunnel] = Registry(
            _settings(config, listener_addresses),
            self._compile,
            static_owner=static_owner,
            open_tcp=self._open_tcp,
            close_tcp=self._close_tcp,
        )
        self.ssl_context = _ingress_context(config)
        try:
            self.sock = _listen(ingress.host, ingress.port)
        except OSError as exc:
            self.store.engine.dispose()
            reason = exc.strerror or str(exc)
            raise EdgewardError(
                f"agent ingress: cannot listen on {ingress.host}:{ingress.port}: {reason}"
            ) from None
        self.address: tuple[str, int] = self.sock.getsockname()[:2]
        self.pools: dict[str, AgentPool] = {}
        # the control plane's IP restrictions (`agent`, and `endpoints` for
        # tcp endpoints); the server sets them from its store watcher
        self.restrictions = Restrictions()
        self._nursery: trio.Nursery | None = None
        self._conn_ids = itertools.count(1)
        self.info = EndpointInfo(
            name="agent_ingress",
            url=f"tls://{ingress.host}:{self.address[1]}",
            host=ingress.host,
            port=self.address[1],
            scheme="tls",
            id="agent_ingress",
            upstream="",
        )

    # --- lifecycle ------------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                watcher = AsyncStore(self.store)
                await nursery.start(watcher.watch, load, self._new_snapshot)
                self.sock.listen(256)
                nursery.start_soon(self._accept_loop)
                nursery.start_soon(self._housekeeping)
                log.info("edgeward: agent ingress on %s:%d", *self.address)
                task_status.started()
        finally:
            self.sock.close()
            for pool in self.pools.values():
                pool.close()
            self.store.engine.dispose()

    def reconfigure(self, config: EdgeConfig, addresses: dict[str, tuple[str, int]]) -> None:
        """A reload: new domains, listeners, TLS certificates and policy;
        the address and state directory stay (a restart moves them)."""
        self.config = config
        self.ssl_context = _ingress_context(config)
        self.registry.settings = _settings(config, addresses)
        self.registry.version += 1

    async def _housekeeping(self) -> None:
        while True:
            await trio.sleep(0.5)
            for published in self.registry.expire(trio.current_time()):
                self._emit(ev.WITHDRAWN, url=published.url, reason="grace period over")
            for name, pool in list(self.pools.items()):
                if name not in self.registry.by_name:
                    pool.close()
                    del self.pools[name]
                else:
                    pool.expire()

    def _new_snapshot(self, snapshot: Snapshot) -> None:
        old, self.snapshot = self.snapshot, snapshot
        stale = old.superseded(snapshot)
        if not stale:
            return
        for session in self.registry.revoke(stale, trio.current_time()):
            self._emit(
                ev.REVOKED,
                session,
                reason="the authtoken was revoked or its ACL changed",
            )
            assert self._nursery is not None
            self._nursery.start_soon(session.handle.aclose, 0, "authtoken revoked")
        for problem in snapshot.problems.values():
            log.warning("authtokens: %s", problem)

    def restrictions_changed(self, restrictions: Restrictions) -> None:
        """New IP restrictions: sessions from an address the `agent`
        restriction now denies are stopped (their endpoints go at once)."""
        self.restrictions = restrictions
        for session in list(self.registry.sessions.values()):
            address = session.client_addr.rpartition(":")[0]
            if restrictions.allows("agent", address):
                continue
            if self.registry.stop(session.id) is None:
                continue
            self._emit(
                ev.DISCONNECTED, session, reason="its address is denied by an IP restriction"
            )
            assert self._nursery is not None
            self._nursery.start_soon(session.handle.aclose, 0, "IP restriction")

    def stop_session(self, session_id: str) -> bool:
        """Stop one agent session (the admin API): withdraw its endpoints at
        once, send the agent Stop (an agent that performs it exits rather
        than reconnecting) and disconnect it. False when there is no such
        session."""
        session = self.registry.stop(session_id)
        if session is None:
            return False
        self._emit(ev.DISCONNECTED, session, reason="stopped through the admin API")
        assert self._nursery is not None
        self._nursery.start_soon(self._stop_agent, session)
        return True

    async def _stop_agent(self, session: AgentSession[ServerTunnel]) -> None:
        tunnel = session.handle
        answer: str | None = "no answer"
        with trio.move_on_after(STOP_ANSWER_TIMEOUT), contextlib.suppress(trio.BrokenResourceError):
            answer = await tunnel.command(StreamType.STOP)
        if answer is not None:  # it will reconnect: only a revoked authtoken keeps it out
            log.info("agent session %s: Stop not performed (%s)", session.id, answer)
        await tunnel.aclose(0, "stopped by an administrator")

    # --- the ingress ----------------------------------------------------------------------

    async def _accept_loop(self) -> None:
        assert self._nursery is not None
        lsock = self.sock
        while True:
            try:
                sock, peer = lsock.accept()
            except BlockingIOError:
                try:
                    await trio.lowlevel.wait_readable(lsock)
                except trio.ClosedResourceError:
                    return
                continue
            except OSError as exc:
                log.warning("agent ingress: accept failed: %s", exc)
                await trio.sleep(0.1)
                continue
            self._nursery.start_soon(self._session, sock, peer)

    async def _session(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        handler: _Handler | None = None
        transport: Transport | None = None
        try:
            sock.setblocking(False)
            tune(sock)
            info = self._connection_info(sock, peer, "agent_ingress")
            ingress = self.config.agent_ingress
            assert ingress is not None
            if ingress.policy is not None and not ingress.policy.on_tcp_connect(info, self.info):
                self._emit(ev.AUTH_REFUSED, client_ip=info.client_ip, reason="on_tcp_connect")
                return
            tls = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
            sock = tls
            with trio.move_on_after(HANDSHAKE_TIMEOUT) as scope:
                try:
                    await tls_handshake(tls)
                except (OSError, ssl.SSLError) as exc:
                    log.debug("agent ingress: TLS handshake with %s failed: %s", peer[0], exc)
                    return
            if scope.cancelled_caught:
                return
            transport = Transport(tls)
            handler = _Handler(self, info)
            await serve_agent(TransportStream(transport), handler)
        except Exception:
            log.exception("agent ingress: session failed")
        finally:
            if transport is not None:
                transport.close()
            else:
                sock.close()
            if handler is not None and handler.session is not None:
                self._session_ended(handler.session)

    def _session_ended(self, session: AgentSession[ServerTunnel]) -> None:
        if session.closed:  # revoked: already gone
            return
        reserved = self.registry.session_lost(session, trio.current_time())
        self._emit(ev.DISCONNECTED, session)
        for published in reserved:
            if published.reserved_until is not None:
                self._emit(ev.RESERVED, session, url=published.url)
            else:
                self._emit(ev.WITHDRAWN, session, url=published.url)

    def _connection_info(
        self, sock: socket.socket, peer: tuple[str, int], listener: str
    ) -> ConnectionInfo:
        local = sock.getsockname()
        return ConnectionInfo(
            id=f"a{next(self._conn_ids)}",
            listener=listener,
            client_ip=peer[0].removeprefix("::ffff:"),
            client_port=peer[1],
            server_ip=local[0],
            server_port=local[1],
            started_at=time.time(),
        )

    # --- what binds need ------------------------------------------------------------------

    def _compile(self, text: str, owner: str, kind: Kind) -> PolicyHooks:
        """An agent's traffic policy, compiled and checked at bind time;
        errors name the document `traffic_policy` (no file of the edge)."""
        if self._policy_factory is None:
            raise EdgewardError("this edge has no policy engine to run traffic policies")
        doc = parse_document(text, "traffic_policy")
        data = doc.data if isinstance(doc.data, dict) else {}
        if kind in ("tcp", "tls"):
            http = sorted(set(data) - {"on_tcp_connect"})
            if http:
                raise ConfigError(
                    f"a {kind} endpoint's policy runs only on_tcp_connect, not {', '.join(http)}",
                    doc.locate((http[0],)),
                )
        source = PolicySource(
            doc, Location(file="traffic_policy"), owner, self.config.events, self.config.identity
        )
        return self._policy_factory(source, self.config.ip_policies)

    def _open_tcp(self, port: int) -> _TcpListener:
        tcp = self.config.agent_ingress.tcp if self.config.agent_ingress else None
        assert tcp is not None
        sock = _listen(tcp.listen_host, port)
        sock.listen(128)
        listener = _TcpListener(sock, port, trio.CancelScope())
        if self._nursery is not None:
            self._nursery.start_soon(self._tcp_accept_loop, listener)
        return listener

    def _close_tcp(self, handle: object) -> None:
        assert isinstance(handle, _TcpListener)
        handle.scope.cancel()
        handle.sock.close()

    async def _tcp_accept_loop(self, listener: _TcpListener) -> None:
        assert self._nursery is not None
        with listener.scope:
            while True:
                try:
                    sock, peer = listener.sock.accept()
                except BlockingIOError:
                    try:
                        await trio.lowlevel.wait_readable(listener.sock)
                    except trio.ClosedResourceError:
                        return
                    continue
                except OSError:
                    await trio.sleep(0.1)
                    continue
                self._nursery.start_soon(self._tcp_connection, sock, peer, listener.port)

    async def _tcp_connection(self, sock: socket.socket, peer: tuple[str, int], port: int) -> None:
        try:
            sock.setblocking(False)
            tune(sock)
            tcp = self.config.agent_ingress.tcp if self.config.agent_ingress else None
            published = self.registry.published.get(f"tcp://{tcp.host}:{port}") if tcp else None
            if published is None:
                return
            info = self._connection_info(sock, peer, f"tcp:{port}")
            if not self.restrictions.allows("endpoints", info.client_ip):
                return
            await self._to_agent(sock, published, info, b"")
        finally:
            _close(sock)  # a no-op when _to_agent closed it

    async def passthrough(self, sock: socket.socket, peer: tuple[str, int], listener: str) -> bool:
        """A connection to a TLS listener: when its ClientHello names an
        agent's tls endpoint, pass it through to the agent untouched (True:
        taken, and closed when done); else leave it to the listener."""
        if not any(p.kind == "tls" for p in self.registry.published.values()):
            return False
        data = b""
        name: str | None = NEED_MORE
        with trio.move_on_after(HANDSHAKE_TIMEOUT):
            while (name := client_hello_sni(data)) is NEED_MORE:
                try:
                    await trio.lowlevel.wait_readable(sock)
                    seen, data = len(data), sock.recv(65536, socket.MSG_PEEK)
                except (OSError, trio.ClosedResourceError):
                    return False
                if not data:
                    return False
                if len(data) == seen:  # peeked bytes keep the socket readable: wait a little
                    await trio.sleep(0.005)
        if name is None or name is NEED_MORE:
            return False
        published = self.registry.tls(name)
        if published is None or not any(listener in e for e in _served(published)):
            return False
        info = self._connection_info(sock, peer, listener)
        tls = next((ln.tls for ln in self.config.listeners if ln.name == listener), None)
        await self._to_agent(sock, published, info, b"", _Terminator(sock, info, tls, name))
        return True

    async def _to_agent(
        self,
        sock: socket.socket,
        published: Published[ServerTunnel],
        info: ConnectionInfo,
        first: bytes,
        terminator: _Terminator | None = None,
    ) -> None:
        """A tcp or tls connection: the endpoint's on_tcp_connect (for a tls
        one, `on_tls_connect`: a terminate-tls there terminates TLS here),
        then bytes both ways through one Proxy stream of a (random) agent.
        Closes the connection when done."""
        client: Transport | None = None
        try:
            policy = published.policy
            if policy is not None:
                if terminator is not None:
                    allowed = policy.on_tls_connect(info, published.info())
                    if needs_io(allowed):
                        allowed = await drive(allowed, terminator.perform)
                else:
                    allowed = policy.on_tcp_connect(info, published.info())
                if not allowed:
                    return
            terminated = terminator is not None and terminator.tls is not None
            client = Transport(terminator.tls if terminator and terminator.tls else sock)
            binding = published.pick()
            if binding is None:  # offline (grace window): close at once, never hang
                return
            header = ProxyHeader(
                binding.id,
                f"{info.client_ip}:{info.client_port}",
                binding.proto,
                EDGE_TYPES[published.kind],
                passthrough_tls=published.kind == "tls" and not terminated,
            )
            try:
                stream = await binding.session.handle.open_proxy(header, first)
            except (trio.BrokenResourceError, KeyError):
                return
            upstream = TunnelTransport(stream)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_pipe, client, upstream, nursery.cancel_scope)
                    nursery.start_soon(_pipe, upstream, client, nursery.cancel_scope)
            finally:
                upstream.close()
        finally:
            if client is not None:
                client.close()
            else:
                _close(terminator.tls if terminator and terminator.tls else sock)

    # --- for the exchange -----------------------------------------------------------------

    def pool(self, endpoint: Endpoint, client: ConnectionInfo, size: int, idle: float) -> Any:
        pool = self.pools.get(endpoint.name)
        if pool is None:
            published = self.registry.by_name.get(endpoint.name)
            if published is None:
                raise errors.UpstreamFailure(errors.AGENT_OFFLINE, endpoint.hostname)
            pool = self.pools[endpoint.name] = AgentPool(
                published, self._codec_factory, None, size=size, idle_timeout=idle
            )
        return AgentPoolView(pool, client)

    def internal(self, host: str) -> tuple[Endpoint, EndpointInfo] | InternalError:
        published = self.registry.internal(host)
        if published is None or published.endpoint is None:
            return _not_found(host)
        if not published.online:
            return InternalError(
                errors.AGENT_OFFLINE.status,
                errors.AGENT_OFFLINE.code,
                f"the agent of internal endpoint {host} is offline",
            )
        return published.endpoint, published.info()

    def _emit(
        self,
        event: str,
        session: AgentSession[ServerTunnel] | None = None,
        **fields: Any,
    ) -> None:
        if session is not None:
            fields.setdefault("authtoken", session.authtoken.id)
            fields.setdefault("session", session.id)
            fields.setdefault("client_ip", session.client_addr.rpartition(":")[0])
        self.events.emit(AgentEvent(event, **fields))


def _not_found(host: str) -> InternalError:
    return InternalError(
        errors.ENDPOINT_NOT_FOUND.status,
        errors.ENDPOINT_NOT_FOUND.code,
        f"no internal endpoint {host} is online",
    )


class _Handler:
    """The `AgentHandler` of one agent connection."""

    def __init__(self, service: AgentService, info: ConnectionInfo) -> None:
        self.service = service
        self.info = info
        self.session: AgentSession[ServerTunnel] | None = None

    async def authenticate(self, tunnel: ServerTunnel, auth: Auth) -> AuthResp:
        service = self.service
        self._check_address()
        token = service.snapshot.authenticate(auth.extra.authtoken)
        address = f"{self.info.client_ip}:{self.info.client_port}"
        try:
            session = service.registry.authenticate(auth, token, address, tunnel)
        except RpcError as exc:
            service._emit(
                ev.AUTH_REFUSED,
                client_ip=self.info.client_ip,
                reason=exc.message,
                error_code=exc.error_code,
            )
            raise
        self.session = session
        service._emit(
            ev.CONNECTED,
            session,
            extra={"user_agent": auth.extra.user_agent, "client_type": auth.extra.client_type},
        )
        version = "3" if "3" in auth.version or not auth.version else auth.version[0]
        return AuthResp(version, session.id, AuthRespExtra(version="edgeward", region="edge"))

    def _check_address(self) -> None:
        """The `agent` IP restriction, answered in the Auth response so the
        agent prints why (ngrok's ERR_NGROK_115); a restriction that is not
        enforced only warns."""
        ip = self.info.client_ip
        allowed, restriction = self.service.restrictions.verdict("agent", ip)
        if allowed or restriction is None:
            return
        if not restriction.enforced:
            log.warning(
                "agent ingress: %s not allowed by IP restriction %s (not enforced)",
                ip,
                restriction.id,
            )
            return
        message = (
            f"the address {ip} is not allowed to start agent sessions on this edge"
            f" (IP restriction {restriction.id})"
        )
        log.warning("agent ingress: refused %s: %s", ip, message)
        self.service._emit(
            ev.AUTH_REFUSED, client_ip=ip, reason=message, error_code=ERR_IP_RESTRICTED
        )
        raise RpcError(message, ERR_IP_RESTRICTED)

    async def bind(self, tunnel: ServerTunnel, bind: Bind) -> BindResp:
        service = self.service
        session = self.session
        if session is None or session.closed:
            raise RpcError("the session is not authenticated")
        try:
            resp = service.registry.bind(session, bind, trio.current_time())
        except RpcError as exc:
            url = getattr(bind.opts, "url", "") or getattr(bind.opts, "requested_domain", "")
            service._emit(
                ev.BIND_REFUSED,
                session,
                url=url or getattr(bind.opts, "addr", "") or None,
                reason=exc.message,
                error_code=exc.error_code,
            )
            raise
        service._emit(ev.BOUND, session, url=resp.url, endpoint_id=resp.id)
        return resp

    async def unbound(self, tunnel: ServerTunnel, endpoint_id: str) -> None:
        session = self.session
        if session is None:
            return
        published = self.service.registry.unbind(session, endpoint_id)
        if published is not None:
            self.service._emit(ev.UNBOUND, session, url=published.url, endpoint_id=endpoint_id)


class _Terminator:
    """Performs the `TerminateTls` of a tls endpoint's policy on its client
    connection (edgeward.hooks): the handshake with the action's settings,
    then the connection's bytes are the decrypted ones (`tls`)."""

    def __init__(
        self,
        sock: socket.socket,
        info: ConnectionInfo,
        listener: ListenerTls | None,
        server_name: str,
    ) -> None:
        self.sock = sock
        self.info = info
        self.listener = listener
        self.server_name = server_name
        self.tls: ssl.SSLSocket | None = None

    async def perform(self, effect: Effect) -> EffectResult:
        if not isinstance(effect, TerminateTls):
            raise RuntimeError(f"an on_tcp_connect action asked for {effect!r}")
        if self.tls is not None:  # a second terminate-tls: checked against the first
            return TlsTerminated(self.info.tls, by_listener=True)
        try:
            context = terminating_context(effect, self.listener, self.server_name)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            return TlsTerminated(None, f"cannot load the certificate: {exc}")
        tls = context.wrap_socket(self.sock, server_side=True, do_handshake_on_connect=False)
        with trio.move_on_after(HANDSHAKE_TIMEOUT) as scope:
            try:
                await tls_handshake(tls)
            except (OSError, ssl.SSLError) as exc:
                tls.close()
                return TlsTerminated(None, f"TLS handshake failed: {exc}")
        if scope.cancelled_caught:
            tls.close()
            return TlsTerminated(None, "TLS handshake timed out")
        self.tls = tls
        self.info.tls = replace(tls_info(tls), server_name=self.server_name)
        return TlsTerminated(self.info.tls)


def _close(sock: socket.socket) -> None:
    """Close a socket no `Transport` holds; a no-op once it is closed (or
    detached into its TLS socket)."""
    if sock.fileno() != -1:
        Transport(sock).close()


def _served(published: Published[Any]) -> list[tuple[str, ...]]:
    return [published.endpoint.listeners] if published.endpoint is not None else []


async def _pipe(source: Transport, sink: Transport, scope: trio.CancelScope) -> None:
    """source -> sink until EOF (then half-close sink), or an error (then
    end both ways)."""
    try:
        while data := await source.recv():
            await sink.send(data)
    except OSError:
        scope.cancel()
        return
    if sink.tls is not None or source.tls is not None:
        scope.cancel()
    else:
        sink.shutdown_write()


def _settings(config: EdgeConfig, addresses: dict[str, tuple[str, int]]) -> Settings:
    ingress = config.agent_ingress
    assert ingress is not None
    listeners = []
    for ln in config.listeners:
        if ln.name in ingress.listeners:
            port = addresses.get(ln.name, (ln.host, ln.port))[1]
            listeners.append(ServedListener(ln.name, ln.scheme, port))
    return Settings(ingress.domains, tuple(listeners), ingress.tcp, ingress.grace_period)


def _ingress_context(config: EdgeConfig) -> ssl.SSLContext:
    ingress = config.agent_ingress
    assert ingress is not None
    try:
        context = server_context(ingress.tls, http2=False)
    except OSError as exc:
        files = ", ".join(f"{c.cert}, {c.key}" for c in ingress.tls.certificates)
        raise EdgewardError(
            f"agent ingress: cannot load its TLS certificates ({files}): {exc}"
        ) from None
    return context


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
