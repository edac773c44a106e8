"""The trio server: listening sockets, accepting, per-connection protocol
choice (TLS + ALPN, h2c prior knowledge, HTTP/1.1), and the lifecycle:
SIGHUP reloads atomically, SIGTERM/SIGINT drain then stop."""

from __future__ import annotations

import errno
import gc
import itertools
import logging
import select
import signal
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import trio
from prometheus_client import CollectorRegistry, ProcessCollector

from edgeward import http1, native
from edgeward.config import EdgeConfig, Endpoint, Listener, PolicyFactory
from edgeward.errors import EdgewardError
from edgeward.hookdriver import drive
from edgeward.hooks import (
    ConnectionInfo,
    Effect,
    EffectResult,
    EndpointInfo,
    PolicyHooks,
    TerminateTls,
    TlsTerminated,
    needs_io,
)
from edgeward.http1.codec import Limits
from edgeward.proxy.accesslog import AccessLog
from edgeward.proxy.admin import Admin
from edgeward.proxy.codecs import CodecKind, codec_factories
from edgeward.proxy.context import (
    ConnContext,
    EndpointInfos,
    Generation,
    ListenerRuntime,
    Services,
    make_trust,
)
from edgeward.proxy.fetch import Fetcher
from edgeward.proxy.http1 import Http1Connection
from edgeward.proxy.http2 import Http2Connection
from edgeward.proxy.metrics import DecisionCounts, EdgeCollector, Gauges
from edgeward.proxy.routing import Router
from edgeward.proxy.tls import peek_client_hello, server_context, tls_info
from edgeward.proxy.transport import Transport, tls_handshake, tune

if TYPE_CHECKING:
    from edgeward.admin.service import ApiService
    from edgeward.control import ControlSnapshot
    from edgeward.proxy.agent_ingress import AgentService
    from edgeward.proxy.control_plane import ControlPlane

log = logging.getLogger("edgeward.proxy")

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class StartupError(EdgewardError):
    """The environment refuses what the config asks for (a certificate
    that cannot be loaded, an address that cannot be bound): reported in
    one line, no traceback."""


class ListenError(StartupError):
    def __init__(self, listener: str, address: tuple[str, int], cause: OSError) -> None:
        host, port = address
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        reason = cause.strerror or str(cause)
        super().__init__(f"{listener}: cannot listen on {shown}: {reason[:1].lower()}{reason[1:]}")
        self.listener = listener
        self.address = address
        self.cause = cause


def build_generation(config: EdgeConfig, agents: AgentService | None = None) -> Generation:
    """Everything derived from a config that connections read: routers,
    TLS contexts, the endpoint facts policies see. Fails before any swap.
    With `agents`, the routers of the listeners serving agents' endpoints
    fall back to them."""
    runtimes = {}
    served = config.agent_ingress.listeners if config.agent_ingress is not None else ()
    for listener in config.listeners:
        endpoints = tuple(e for e in config.endpoints if listener.name in e.listeners)
        ctx = _tls_context(listener)
        routes = (
            agents.registry.routes(listener.name) if agents and listener.name in served else None
        )
        infos = EndpointInfos({e.name: _endpoint_info(e, listener) for e in endpoints}, routes)
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
            listener, Router(endpoints, routes), endpoints, ctx, infos, listener_info
        )
    internal = [e for e in config.endpoints if e.internal]
    return Generation(
        config,
        runtimes,
        make_trust(config),
        internal=Router(internal),
        internal_infos={e.name: _internal_info(e) for e in internal},
    )


def _internal_info(endpoint: Endpoint) -> EndpointInfo:
    return EndpointInfo(
        name=endpoint.name,
        url=f"https://{endpoint.hostname}",
        host=endpoint.hostname,
        port=443,
        scheme="https",
        id=f"endpoint:{endpoint.name}",
        upstream=endpoint.upstream.url,
        metadata=endpoint.metadata,
    )


def _tls_context(listener: Listener) -> ssl.SSLContext | None:
    if listener.tls is None:
        return None
    try:
        return server_context(listener.tls, http2=listener.http2)
    except OSError as exc:  # ssl.SSLError is one
        files = ", ".join(f"{c.cert}, {c.key}" for c in listener.tls.certificates)
        raise StartupError(
            f"listener {listener.name}: cannot load its TLS certificates ({files}): {exc}"
        ) from None


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
class _Accepted:
    """A client socket while the accept-time policies run: the listener's
    handshake may be made then (`tls`, which is then also `sock`)."""

    sock: socket.socket
    tls: ssl.SSLSocket | None = None


@dataclass(slots=True)
class _Bound:
    sock: socket.socket
    listener: str
    scope: trio.CancelScope


class _ConnectionCount:
    """Open client connections, and a wait for that number to change. Each
    change sets the current event and replaces it, so every wait is on an
    event that is not set yet: a waiter sleeps until the next change
    instead of spinning on an event set long ago."""

    __slots__ = ("_changed", "value")

    def __init__(self) -> None:
        self.value = 0
        self._changed = trio.Event()

    def add(self) -> None:
        self.value += 1

    def remove(self) -> None:
        self.value -= 1
        changed, self._changed = self._changed, trio.Event()
        changed.set()

    async def changed(self) -> None:
        await self._changed.wait()


class Server:
    """Serves one config (and its reloads) in the calling trio run.

    The listening sockets are bound when it is made, so an address in use
    or a low port without permission is a `ListenError` before anything
    runs."""

    def __init__(
        self,
        config: EdgeConfig,
        *,
        codec: CodecKind = "fast",
        reload: Callable[[], EdgeConfig] | None = None,
        reuse_port: bool = False,
        policy_factory: PolicyFactory | None = None,
        decisions: DecisionCounts = tuple,
    ) -> None:
        self.codec = codec
        self._decisions = decisions
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
        self._file_config = config  # edge.yml's, without the endpoints made through the API
        self.control: ControlPlane | None = None
        if config.api is not None or config.agent_ingress is not None:  # edges with a store
            from edgeward.proxy.control_plane import ControlPlane

            self.control = ControlPlane(config, policy_factory)
            self._inspect(self.control.snapshot)
            config = self._with_control(config)
        if config.agent_ingress is not None:  # the state store is imported only then
            from edgeward.proxy.agent_ingress import AgentService

            addresses = {ln.name: (ln.host, ln.port) for ln in config.listeners}
            self.services.agents = AgentService(
                config, client_codec, policy_factory, addresses, self._static_owner
            )
            if self.control is not None:
                self.services.agents.restrictions = self.control.snapshot.restrictions
        self.gen = build_generation(config, self.services.agents)
        plan = self.services.pools.prepare(config)  # UpstreamCaError: one line, like a StartupError
        self.gen.pools = self.services.pools.apply(plan, config)
        self._reload = reload
        self._reuse_port = reuse_port
        self._bound: dict[tuple[str, int], _Bound] = {}
        self._conn_ids = itertools.count(1)
        self._stop = trio.Event()
        self._conns = _ConnectionCount()
        self._idle_connections: set[Http1Connection] = set()
        self._h2_connections: set[Http2Connection] = set()
        self._nursery: trio.Nursery | None = None
        self._serving = False
        self.addresses: dict[str, tuple[str, int]] = {}
        self._admin: tuple[tuple[str, int] | None, socket.socket | None, trio.CancelScope] = (
            None,
            None,
            trio.CancelScope(),
        )
        self._registry: CollectorRegistry | None = None
        new = self._open_listeners(config)
        try:
            admin = self._open_admin(config)
        except StartupError:
            for _, sock in new:
                sock.close()
            raise
        self._install(config, new, admin)
        if self.services.agents is not None:
            self.services.agents.reconfigure(config, self.addresses)  # the ports bound
            self.addresses["agent_ingress"] = self.services.agents.address
        self.api: ApiService | None = None
        if config.api is not None:
            try:
                self.api = self._open_api(config)
            except BaseException:
                for bound in self._bound.values():
                    bound.sock.close()
                self._close_admin()
                raise
            self.addresses["api"] = self.api.address

    # --- lifecycle ------------------------------------------------------------------

    async def serve(
        self, *, task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until `shutdown()` (or a signal), then drain."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.services.pools.nursery = nursery  # HTTP/2 upstream connections' tasks
            for bound in self._bound.values():
                bound.sock.listen(1024)  # only now: a client that connects gets served
                nursery.start_soon(self._accept_loop, bound)
            self._start_admin()
            if self.control is not None:
                first = await nursery.start(self.control.serve, self._control_changed)
                self._control_changed(first)  # a change since the server was made
            if self.services.agents is not None:
                await nursery.start(self.services.agents.serve)
            if self.api is not None:
                await nursery.start(self.api.serve, self._stop.wait)
            nursery.start_soon(self._housekeeping)
            nursery.start_soon(self.services.watchdog.run)
            self._serving = True
            task_status.started(self)
            compiled = "compiled" if http1.COMPILED else "pure Python"
            codec = f"fast ({compiled})" if self.codec == "fast" else "h11"
            log.info(
                "edgeward: serving %s (matcher backend %s, HTTP/1 codec %s)",
                self.gen.config.file,
                native.BACKEND,
                codec,
            )
            self._log_listeners(self.gen.config)
            await self._stop.wait()
            await self._drain()
            nursery.cancel_scope.cancel()
        self.services.pools.close()
        self.services.access_log.close()
        self._close_admin()

    async def handle_signals(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """SIGHUP -> reload; SIGTERM/SIGINT -> graceful stop. Start it with
        `nursery.start` before `serve`: a signal that comes once the ports
        listen is then never the default action (SIGHUP would end us)."""
        with trio.open_signal_receiver(signal.SIGHUP, signal.SIGTERM, signal.SIGINT) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGHUP:
                    self.reload()
                else:
                    log.info("edgeward: %s, draining", signal.Signals(signum).name)
                    self.shutdown()
                    return

    def shutdown(self) -> None:
        self._stop.set()

    def ready(self) -> bool:
        """Listeners bound and not draining (`/readyz`)."""
        return self._serving and bool(self._bound) and not self.services.draining

    @property
    def gen(self) -> Generation:
        """The current generation: new connections, and the next request of
        an open one, take it."""
        gen = self.services.generation
        assert gen is not None
        return gen

    @gen.setter
    def gen(self, gen: Generation) -> None:
        self.services.generation = gen

    def reload(self) -> bool:
        """Load the config again; on any error keep the old one. New
        connections and the next request of open ones get the new
        generation; exchanges under way keep theirs. Upstream
        pools take the new sizes and timeouts; a rotated CA file gets a
        fresh pool."""
        if self._reload is None:
            return False
        stats = self.services.stats
        new: list[tuple[tuple[str, int], socket.socket]] = []
        try:
            raw = self._reload()
            config = self._with_control(raw)
            self._check_agent_ingress(config)
            if config.api != self.gen.config.api:
                raise StartupError("api: the admin API's settings change only with a restart")
            gen = build_generation(config, self.services.agents)
            plan = self.services.pools.prepare(config)
            new = self._open_listeners(config)
            admin = self._open_admin(config)
        except (EdgewardError, OSError) as exc:
            for _, sock in new:
                sock.close()
            log.error("edgeward: reload rejected, keeping the running config: %s", exc)
            stats.reloads["failed"] += 1
            return False
        gen.pools = self.services.pools.apply(plan, config)
        self.gen = gen
        self._file_config = raw
        if self.control is not None:
            self._inspect(self.control.snapshot)  # edge.yml's secrets may have changed
        self._install(config, new, admin)
        if self.services.agents is not None:
            self.services.agents.reconfigure(config, self.addresses)
            self.addresses["agent_ingress"] = self.services.agents.address
        self.services.access_log.reconfigure(
            config.access_log.path, enabled=config.access_log.enabled
        )
        stats.reloads["ok"] += 1
        self._log_listeners(config)
        # The previous generation goes when its last connection does; what it
        # holds in reference cycles (policies' event files among them) would
        # wait for the collector's next full pass: collect now, once per reload.
        gc.collect()
        log.info("edgeward: reloaded %s", config.file)
        return True

    # --- the control plane (docs/control-plane.md) ---------------------------------------------

    def _with_control(self, config: EdgeConfig) -> EdgeConfig:
        """`config` with the endpoints made through the admin API."""
        if self.control is None:
            return config
        made = self.control.endpoints(config, self.control.snapshot)
        return replace(config, endpoints=(*config.endpoints, *made)) if made else config

    def _control_changed(self, snapshot: ControlSnapshot) -> None:
        """A new control snapshot (the store changed): restrictions at once;
        endpoints in a new generation, as a reload."""
        control = self.control
        assert control is not None
        old, control.snapshot = control.snapshot, snapshot
        agents = self.services.agents
        if agents is not None:
            agents.restrictions_changed(snapshot.restrictions)
        if snapshot.inspections != old.inspections or snapshot.vaults != old.vaults:
            self._inspect(snapshot)
        if snapshot.same_endpoints(old):
            return
        try:
            config = self._with_control(self._file_config)
            gen = build_generation(config, agents)
            plan = self.services.pools.prepare(config)
        except (EdgewardError, OSError) as exc:
            log.error("edgeward: endpoints from the store not applied: %s", exc)
            return
        gen.pools = self.services.pools.apply(plan, config)
        self.gen = gen
        log.info("edgeward: endpoints from the store applied (revision %d)", snapshot.revision)

    def _inspect(self, snapshot: ControlSnapshot) -> None:
        """The traffic inspector's opt-ins, and the secret values it redacts
        (the vaults' and edge.yml's), from the store: at once, for open
        connections too."""
        values = [v for vault in snapshot.vaults.values() for v in vault.values()]
        values += [v for vault in self._file_config.secrets.values() for v in vault.values()]
        self.services.inspector.configure(snapshot.inspections, values)

    def _listening(self, listener: str) -> tuple[str, int, bool] | None:
        """Where the listener `listener` is bound, and whether it speaks TLS
        (a replay of the traffic inspector goes there)."""
        address = self.addresses.get(listener)
        found = next((ln for ln in self.gen.config.listeners if ln.name == listener), None)
        if address is None or found is None:
            return None
        return address[0], address[1], found.tls is not None

    def _restricted(self, kind: str, client_ip: str) -> bool:
        """Whether the `kind` IP restriction refuses `client_ip`."""
        control = self.control
        if control is None:
            return False
        allowed, restriction = control.snapshot.restrictions.verdict(kind, client_ip)
        if allowed or restriction is None:
            return False
        if not restriction.enforced:
            log.warning(
                "edgeward: %s not allowed by IP restriction %s (not enforced)",
                client_ip,
                restriction.id,
            )
            return False
        log.debug("edgeward: %s refused by IP restriction %s", client_ip, restriction.id)
        return True

    def _check_agent_ingress(self, config: EdgeConfig) -> None:
        """A reload may change what agents may bind, not where they connect."""
        old, new = self.gen.config.agent_ingress, config.agent_ingress
        if (old is None) != (new is None) or (
            old is not None
            and new is not None
            and ((old.host, old.port) != (new.host, new.port) or old.tcp != new.tcp)
        ):
            raise StartupError(
                "agent_ingress: its address and tcp ports change only with a restart"
            )
        if new is not None and (config.state_dir, config.store_url) != (
            self.gen.config.state_dir,
            self.gen.config.store_url,
        ):
            raise StartupError("state_dir and store_url change only with a restart")

    def _open_api(self, config: EdgeConfig) -> ApiService:
        """The admin API (`api:`): its socket bound now, its store opened."""
        from edgeward.admin.dataplane import DataPlane  # Starlette/hypercorn only when configured
        from edgeward.admin.service import ApiService

        api = config.api
        assert api is not None
        context = None
        if api.tls is not None:
            try:
                context = server_context(api.tls, http2=False)
            except OSError as exc:
                raise StartupError(f"api: cannot load its TLS certificates: {exc}") from None
        try:
            sock = self._listen((api.host, api.port), reuse_port=False)
        except OSError as exc:
            raise ListenError("admin API", (api.host, api.port), exc) from None
        agents = self.services.agents
        control = self.control
        assert control is not None  # made with `api:`
        dataplane = DataPlane(
            config=lambda: self._file_config,
            registry=lambda: agents.registry if agents is not None else None,
            stop_session=agents.stop_session if agents is not None else lambda _id: False,
            control=lambda: control.snapshot,
            check_policy=lambda text, vaults: control.check(text, self._file_config, vaults),
            ingress_address=lambda: agents.address if agents is not None else None,
            captures=self._captures,
            clear_captures=self.services.inspector.clear,
            replay=self._replay,
        )
        try:
            return ApiService(api, config, sock, context, dataplane)
        except BaseException:
            sock.close()
            raise

    def _captures(self, endpoint_id: str) -> list[dict[str, Any]]:
        return [r.as_json() for r in self.services.inspector.captures(endpoint_id)]

    async def _replay(self, endpoint_id: str, capture_id: str) -> dict[str, Any]:
        inspector = self.services.inspector
        return (await inspector.replay(endpoint_id, capture_id, self._listening)).as_json()

    def _static_owner(self, listener: str, host: str) -> str | None:
        """The edge config's endpoint serving `host` on `listener`, if any
        (agents cannot bind such a name)."""
        runtime = self.gen.listeners.get(listener)
        endpoint = runtime.router.route_static(host) if runtime is not None else None
        return endpoint.name if endpoint is not None else None

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
        conns = self._conns
        with trio.move_on_after(self.gen.config.timeouts.drain):
            while conns.value:
                await conns.changed()
        if conns.value:
            log.warning("edgeward: drain timeout, closing %d connections", conns.value)

    async def _housekeeping(self) -> None:
        while True:
            await trio.sleep(1)
            self.services.pools.expire()

    # --- sockets ------------------------------------------------------------------

    def _open_listeners(self, config: EdgeConfig) -> list[tuple[tuple[str, int], socket.socket]]:
        """Sockets for the listeners of `config` not bound yet; on any
        error none (a `ListenError` naming the listener)."""
        new: list[tuple[tuple[str, int], socket.socket]] = []
        for ln in config.listeners:
            address = (ln.host, ln.port)
            if address in self._bound or any(a == address for a, _ in new):
                continue
            try:
                new.append((address, self._listen(address)))
            except OSError as exc:
                for _, sock in new:
                    sock.close()
                raise ListenError(f"listener {ln.name}", address, exc) from None
        return new

    def _install(
        self,
        config: EdgeConfig,
        new: list[tuple[tuple[str, int], socket.socket]],
        admin: socket.socket | None,
    ) -> None:
        """Swap the listening sockets to `config`'s: close the ones it
        dropped, start accepting on the `new` ones."""
        wanted = {(ln.host, ln.port): ln.name for ln in config.listeners}
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
            if self._nursery is not None:
                sock.listen(1024)
                self._nursery.start_soon(self._accept_loop, bound)
        self.addresses = {b.listener: b.sock.getsockname()[:2] for b in self._bound.values()}
        admin_address = _admin_address(config)
        if admin_address != self._admin[0]:
            self._close_admin()
            self._admin = (admin_address, admin, trio.CancelScope())
            self._start_admin()
            if admin is not None:
                self.addresses["admin"] = admin.getsockname()[:2]

    def _log_listeners(self, config: EdgeConfig) -> None:
        for ln in config.listeners:
            host, port = self.addresses[ln.name]
            log.info("edgeward: listener %s on %s:%d", ln.name, host, port)
        if "admin" in self.addresses:
            host, port = self.addresses["admin"]
            log.info("edgeward: admin listener (/metrics, /healthz, /readyz) on %s:%d", host, port)
        if "api" in self.addresses and self.api is not None:
            host, port = self.addresses["api"]
            log.info("edgeward: admin API on %s://%s:%d", self.api.scheme, host, port)

    def _listen(self, address: tuple[str, int], *, reuse_port: bool | None = None) -> socket.socket:
        host, port = address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self._reuse_port if reuse_port is None else reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))  # listen() once served (`serve`, `_install`)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    # --- the admin listener ---------------------------------------------------------

    def _open_admin(self, config: EdgeConfig) -> socket.socket | None:
        """A socket for the admin listener when `config` moves or adds it.
        Never SO_REUSEPORT: with `--workers` only the first worker to bind
        it serves it (the others log that they do not)."""
        address = _admin_address(config)
        if address is None or address == self._admin[0]:
            return None
        try:
            sock = self._listen(address, reuse_port=False)
            try:
                sock.listen(64)  # at once: another worker's bind must fail from here on
            except OSError:
                sock.close()
                raise
            return sock
        except OSError as exc:
            if self._reuse_port and exc.errno == errno.EADDRINUSE:
                log.info("edgeward: admin listener served by another worker")
                return None
            raise ListenError("admin listener", address, exc) from None

    def _start_admin(self) -> None:
        _, sock, scope = self._admin
        if sock is None or self._nursery is None or scope.cancel_called:
            return
        if self._registry is None:
            self._registry = CollectorRegistry(auto_describe=True)
            gauges = Gauges(
                connections=lambda: self._conns.value,
                http2_streams=lambda: sum(len(c.streams) for c in self._h2_connections),
                ready=self.ready,
            )
            self._registry.register(EdgeCollector(self.services.stats, gauges, self._decisions))
            ProcessCollector(registry=self._registry)
        admin = Admin(sock, self._registry, self.ready)

        async def run() -> None:
            with scope:
                await admin.serve()

        self._nursery.start_soon(run)

    def _close_admin(self) -> None:
        _, sock, scope = self._admin
        scope.cancel()
        if sock is not None:
            sock.close()

    # --- accepting ------------------------------------------------------------------

    async def _accept_loop(self, bound: _Bound) -> None:
        lsock = bound.sock
        nursery = self._nursery
        assert nursery is not None
        conns = self._conns
        with bound.scope:
            while True:
                limit = self.gen.config.limits.max_connections
                while conns.value >= limit:
                    # full: new clients wait in the backlog; while one does,
                    # an idle keep-alive connection gives up its slot
                    if _has_pending(lsock):
                        self._evict_idle()
                    with trio.move_on_after(0.25):
                        await conns.changed()
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
                conns.add()
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
            if self._restricted("endpoints", client_ip):
                return
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
            accepted = _Accepted(sock)
            try:
                policy = listener.policy
                if (
                    policy is not None
                    and ctx.tcp_check_due(None, policy)
                    and not await self._accept_check(ctx, policy, runtime.listener_info, accepted)
                ):
                    return
                only = runtime.router.only
                if (
                    only is not None
                    and only.policy is not None
                    and ctx.tcp_check_due(only, only.policy)
                    and not await self._accept_check(
                        ctx, only.policy, runtime.endpoint_infos[only.name], accepted
                    )
                ):
                    return
            finally:
                sock = accepted.sock
            handshaken = accepted.tls
            alpn = None
            agents = self.services.agents
            if (
                handshaken is None
                and runtime.ssl_context is not None
                and agents is not None
                and await agents.passthrough(sock, peer, listener_name)
            ):
                return  # an agent's tls endpoint: its bytes went to the agent untouched
            if runtime.ssl_context is not None:
                if handshaken is None:
                    handshaken = await self._handshake(ctx, sock)
                    if handshaken is None:
                        return
                    sock = handshaken
                assert info.tls is not None
                alpn = info.tls.alpn
                if not self._sni_connect_check(ctx, info.tls.server_name):
                    return
            transport = Transport(sock, meter=info)
            await self._speak(ctx, transport, alpn)
        except Exception:
            log.exception("edgeward: connection failed")
        finally:
            if transport is not None:
                transport.close()
            else:
                sock.close()
            self._conns.remove()

    async def _accept_check(
        self, ctx: ConnContext, policy: PolicyHooks, endpoint: EndpointInfo, accepted: _Accepted
    ) -> bool:
        """A policy's on_tcp_connect at accept. On a TLS listener a
        terminate-tls there is answered with the listener's own handshake,
        made then (`accepted.tls`), which the action checks."""
        if ctx.runtime.ssl_context is None:
            return policy.on_tcp_connect(ctx.info, endpoint)
        outcome = policy.on_tls_connect(ctx.info, endpoint)
        if not needs_io(outcome):
            return outcome

        async def perform(effect: Effect) -> EffectResult:
            if not isinstance(effect, TerminateTls):
                raise RuntimeError(f"on_tcp_connect asked for {effect!r}")
            if accepted.tls is None:
                done = await self._handshake(ctx, accepted.sock)
                if done is None:
                    return TlsTerminated(None, "TLS handshake failed")
                accepted.sock = accepted.tls = done
            return TlsTerminated(ctx.info.tls, by_listener=True)

        return await drive(outcome, perform)

    async def _handshake(self, ctx: ConnContext, sock: socket.socket) -> ssl.SSLSocket | None:
        """The listener's TLS handshake (sets `ctx.info.tls`); None when it
        failed or timed out (the socket is then closed)."""
        assert ctx.runtime.ssl_context is not None
        tls_sock: ssl.SSLSocket | None = None
        with trio.move_on_after(ctx.config.timeouts.header_read) as scope:
            hello = await peek_client_hello(sock)  # for JA4; the handshake reads it again
            tls_sock = ctx.runtime.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
            try:
                await tls_handshake(tls_sock)
            except (OSError, ssl.SSLError) as exc:
                log.debug("TLS handshake with %s failed: %s", ctx.info.client_ip, exc)
                tls_sock.close()
                return None
        if scope.cancelled_caught or tls_sock is None:
            (tls_sock or sock).close()
            return None
        ctx.info.tls = tls_info(tls_sock, hello)
        return tls_sock

    def _sni_connect_check(self, ctx: ConnContext, server_name: str | None) -> bool:
        """With SNI the endpoint is known right after the handshake: run its
        on_tcp_connect before any request is read."""
        if not server_name:
            return True
        endpoint = ctx.runtime.router.route_name(server_name.lower())
        if (
            endpoint is None
            or endpoint.policy is None
            or not ctx.tcp_check_due(endpoint, endpoint.policy)
        ):
            return True
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
    """Whether a listening socket has a connection waiting to be accepted.
    poll(2), not select(2): select cannot take a descriptor >= 1024."""
    poller = select.poll()
    poller.register(lsock, select.POLLIN)
    return bool(poller.poll(0))


def _admin_address(config: EdgeConfig) -> tuple[str, int] | None:
    return None if config.admin is None else (config.admin.host, config.admin.port)
