"""The agent at run time (trio): one TLS connection to the edge's agent
ingress carrying the tunnel session, the endpoints bound on it, and one
task per Proxy stream copying bytes between the stream and the local
upstream (so HTTP, WebSocket, SSE and raw TCP/TLS all pass).

The connection is (re)made with jittered exponential backoff from the very
first attempt: an edge that is down when the agent starts is retried, not
fatal. After a reconnect every endpoint is bound again with the id and
token the edge gave it, so the edge hands the same endpoint back (it keeps
it reserved for a few seconds). Ctrl-C (or SIGTERM) unbinds every endpoint
and closes the session with GOAWAY before exiting.

What is fatal: an authtoken the edge refuses, and a bind it refuses when
first asked (the URL or policy is wrong, the ACL does not allow it): the
message is printed and the agent exits 1. A bind refused after a reconnect
because the endpoint is still online elsewhere is retried.
"""

from __future__ import annotations

import contextlib
import getpass
import ipaddress
import platform
import random
import signal
import socket
import ssl
import time
from dataclasses import dataclass, field

import trio

from edgeward.agent.config import AgentSettings, EndpointSpec, Upstream
from edgeward.agent.console import Console, HttpObserver
from edgeward.proxy.transport import Transport, TransportStream, connect, tls_handshake
from edgeward.tunnel.client import ClientSession
from edgeward.tunnel.errors import RpcError
from edgeward.tunnel.messages import (
    Auth,
    AuthExtra,
    Bind,
    BindExtra,
    BindResp,
    HttpOpts,
    ProxyHeader,
    StreamType,
    TcpOpts,
    TlsOpts,
)
from edgeward.tunnel.trio_session import ClientTunnel, TunnelStream, open_agent_session

VERSION = "0.1.0"
CLIENT_TYPE = "edgeward-agent"
CONNECT_TIMEOUT = 10.0
BACKOFF_BASE = 0.5  # seconds; the n-th retry waits up to BASE * 2**n, capped
BACKOFF_CAP = 30.0
UPSTREAM_ERROR = "ERR_EDGEWARD_8012"  # the agent could not reach its upstream
_STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError)


class AgentFailed(Exception):
    """What the agent cannot get past by retrying (exit 1)."""


def backoff(attempt: int, rng: random.Random | None = None) -> float:
    """Full jitter: uniform in (0, min(cap, base * 2**attempt)], from attempt 0."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(attempt, 16))
    return (rng or random).uniform(ceiling / 10, ceiling)


@dataclass(slots=True)
class _Bound:
    spec: EndpointSpec
    resp: BindResp


@dataclass(slots=True)
class Agent:
    settings: AgentSettings
    console: Console
    session_id: str = ""  # the edge's id for us: sent back on reconnect
    bound: dict[str, _Bound] = field(default_factory=dict)  # by endpoint name
    by_id: dict[str, EndpointSpec] = field(default_factory=dict)  # endpoint id -> spec
    tunnel: ClientTunnel | None = None
    stopping: bool = False
    connected: trio.Event = field(default_factory=trio.Event)  # the first session is up

    async def run(self) -> None:
        """Serve until `stop()`; raises `AgentFailed`."""
        attempt = 0
        while not self.stopping:
            try:
                transport = await self._connect()
            except (OSError, ssl.SSLError, trio.TooSlowError) as exc:
                await self._retry(attempt, f"cannot connect to {self.settings.server}: {exc}")
                attempt += 1
                continue
            established = await self._session(transport)
            if self._stopped():
                return
            attempt = 0 if established else attempt + 1
            await self._retry(attempt, "the connection to the edge was lost")

    def _stopped(self) -> bool:
        return self.stopping  # (a method: mypy would take the loop's test as still true)

    async def _retry(self, attempt: int, why: str) -> None:
        delay = backoff(attempt)
        self.console.info(f"{why}; reconnecting in {delay:.1f} s")
        await trio.sleep(delay)

    async def _connect(self) -> Transport:
        host, port = self.settings.server_host, self.settings.server_port
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        if not infos:
            raise OSError(f"cannot resolve {host}")
        family, _, _, _, address = infos[0]
        sock = await connect(family, address[:2], CONNECT_TIMEOUT)
        context = ssl.create_default_context(
            cafile=str(self.settings.ca_file) if self.settings.ca_file else None
        )
        tls = context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
        try:
            with trio.fail_after(CONNECT_TIMEOUT):
                await tls_handshake(tls)
        except BaseException:
            tls.close()
            raise
        return Transport(tls)

    async def _session(self, transport: Transport) -> bool:
        """One session until it ends; whether it authenticated."""
        settings = self.settings
        session = ClientSession(
            heartbeat_interval=settings.heartbeat_interval,
            heartbeat_tolerance=settings.heartbeat_tolerance,
            performs=frozenset({StreamType.STOP}),
        )
        established = False
        try:
            async with open_agent_session(TransportStream(transport), session=session) as tunnel:
                try:
                    resp = await tunnel.authenticate(self._auth())
                except RpcError as exc:
                    raise AgentFailed(f"the edge refused the authtoken: {exc.message}") from None
                self.session_id = resp.client_id
                established = True
                self.console.info(f"connected to {settings.server} (session {resp.client_id})")
                await self._bind_all(tunnel)
                self.tunnel = tunnel
                self.connected.set()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._obey_stop, tunnel, nursery.cancel_scope)
                    while True:
                        header, stream = await tunnel.accept()
                        spec = self.by_id.get(header.id)
                        if spec is None:
                            stream.reset()
                            continue
                        nursery.start_soon(self._forward, header, stream, spec)
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError):
            pass  # the session ended: reconnect (an AgentFailed goes on up)
        finally:
            self.tunnel = None
            transport.close()
        return established

    async def _obey_stop(self, tunnel: ClientTunnel, scope: trio.CancelScope) -> None:
        """The edge's Stop command (an administrator stopped this session):
        exit instead of reconnecting."""
        await tunnel.stop_requested.wait()
        self.stopping = True
        self.console.info("the edge stopped this agent's session (an administrator): exiting")
        await tunnel.aclose()
        scope.cancel()

    def _auth(self) -> Auth:
        return Auth(
            client_id=self.session_id,
            extra=AuthExtra(
                os=platform.system().lower(),
                arch=platform.machine(),
                authtoken=self.settings.authtoken,
                version=VERSION,
                hostname=socket.gethostname(),
                user_agent=f"{CLIENT_TYPE}/{VERSION}",
                metadata=_user(),
                client_type=CLIENT_TYPE,
                update_unsupported_error="the edgeward agent does not update itself",
                restart_unsupported_error="restart the edgeward agent where it runs",
            ),
        )

    async def _bind_all(self, tunnel: ClientTunnel) -> None:
        by_id: dict[str, EndpointSpec] = {}
        for spec in self.settings.endpoints:
            previous = self.bound.get(spec.name)
            try:
                resp = await tunnel.bind(_bind(spec, previous.resp if previous else None))
            except RpcError as exc:
                if previous is not None and exc.error_code == "ERR_NGROK_334":
                    raise trio.BrokenResourceError(f"{spec.name}: {exc.message}") from None
                code = f" ({exc.error_code})" if exc.error_code else ""
                raise AgentFailed(
                    f"the edge refused endpoint {spec.name}{code}:\n{exc.message}"
                ) from None
            if previous is None or previous.resp.url != resp.url:
                self.console.forwarding(resp.url, spec.upstream.url)
            self.bound[spec.name] = _Bound(spec, resp)
            by_id[resp.id] = spec
        self.by_id = by_id

    async def stop(self) -> None:
        """Unbind every endpoint and close the session (GOAWAY)."""
        self.stopping = True
        tunnel = self.tunnel
        if tunnel is None:
            return
        with trio.move_on_after(3):
            for bound in self.bound.values():
                with contextlib.suppress(RpcError, trio.BrokenResourceError):
                    await tunnel.unbind(bound.resp.id)
        await tunnel.aclose()

    # --- one Proxy stream ------------------------------------------------------------------

    async def _forward(self, header: ProxyHeader, stream: TunnelStream, spec: EndpointSpec) -> None:
        started = time.time()
        http = spec.kind in ("http", "https")
        try:
            upstream = await open_upstream(spec.upstream)
        except (OSError, ssl.SSLError, trio.TooSlowError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            if http:
                await _bad_gateway(stream, spec.upstream, reason)
            else:
                stream.reset()
            kind = "http" if http else spec.kind
            error = f"upstream {spec.upstream.url}: {reason}"
            self.console.connection(kind, header.client_addr, started, (0, 0), error)
            return
        observer = HttpObserver(self.console.request) if http and not self.console.quiet else None
        counts = [0, 0]
        try:
            async with trio.open_nursery() as nursery:
                scope = nursery.cancel_scope
                nursery.start_soon(_to_upstream, stream, upstream, observer, counts, scope)
                nursery.start_soon(_to_edge, upstream, stream, observer, counts, scope)
        finally:
            upstream.close()
            stream.close()
        if not http:
            self.console.connection(spec.kind, header.client_addr, started, (counts[0], counts[1]))


def _bind(spec: EndpointSpec, previous: BindResp | None) -> Bind:
    extra = BindExtra(
        token=previous.token if previous else "",
        pooling_enabled=spec.pooling_enabled,
        bindings=list(spec.bindings),
        name=spec.name,
    )
    host = ""
    if spec.url:
        from urllib.parse import urlsplit

        host = urlsplit(spec.url).hostname or ""
    opts: HttpOpts | TcpOpts | TlsOpts
    if spec.kind == "tcp":
        addr = spec.url.split("://", 1)[1] if spec.url else ""
        opts = TcpOpts(addr=addr, traffic_policy=spec.traffic_policy, url=spec.url)
    elif spec.kind == "tls":
        opts = TlsOpts(domain=host, traffic_policy=spec.traffic_policy, url=spec.url)
    else:
        opts = HttpOpts(domain=host, traffic_policy=spec.traffic_policy, url=spec.url)
    return Bind(
        proto=spec.kind,
        opts=opts,
        id=previous.id if previous else "",
        forwards_to=spec.upstream.url,
        extra=extra,
    )


async def open_upstream(upstream: Upstream) -> Transport:
    infos = await trio.socket.getaddrinfo(upstream.host, upstream.port, type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"cannot resolve {upstream.host}")
    family, _, _, _, address = infos[0]
    sock = await connect(family, address[:2], CONNECT_TIMEOUT)
    if upstream.scheme != "https":
        return Transport(sock)
    context = ssl.create_default_context()
    if _loopback(upstream.host):  # a local app's own certificate: not checked
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    tls = context.wrap_socket(sock, server_hostname=upstream.host, do_handshake_on_connect=False)
    try:
        with trio.fail_after(CONNECT_TIMEOUT):
            await tls_handshake(tls)
    except BaseException:
        tls.close()
        raise
    return Transport(tls)


def _first(group: BaseExceptionGroup[AgentFailed]) -> BaseException:
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _bad_gateway(stream: TunnelStream, upstream: Upstream, reason: str) -> None:
    body = (
        f"502 Bad Gateway\nthe edgeward agent could not connect to {upstream.url}: {reason}\n"
    ).encode()
    head = (
        "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n"
        f"edgeward-error: {UPSTREAM_ERROR}\r\n\r\n"
    ).encode()
    try:
        await stream.send_all(head + body)
        await stream.send_eof()
    except _STREAM_ERRORS:
        pass


async def _to_upstream(
    stream: TunnelStream,
    upstream: Transport,
    observer: HttpObserver | None,
    counts: list[int],
    scope: trio.CancelScope,
) -> None:
    """Edge -> upstream until the edge's FIN (then half-close, or over TLS
    end both ways)."""
    try:
        while data := await stream.receive_some():
            counts[0] += len(data)
            if observer is not None:
                observer.requests(data)
            await upstream.send(data)
    except _STREAM_ERRORS:
        scope.cancel()
        return
    if upstream.tls is not None:
        scope.cancel()  # no reliable half-close over TLS
    else:
        upstream.shutdown_write()


async def _to_edge(
    upstream: Transport,
    stream: TunnelStream,
    observer: HttpObserver | None,
    counts: list[int],
    scope: trio.CancelScope,
) -> None:
    """Upstream -> edge until the upstream's EOF (then FIN); an upstream
    error resets the stream, so the edge never mistakes a cut answer for a
    whole one."""
    try:
        while data := await upstream.recv():
            counts[1] += len(data)
            if observer is not None:
                observer.responses(data)
            await stream.send_all(data)
    except (OSError, ssl.SSLError):
        stream.reset()
        scope.cancel()
        return
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        scope.cancel()
        return
    try:
        await stream.send_eof()
    except _STREAM_ERRORS:
        scope.cancel()


async def run_agent(settings: AgentSettings, console: Console) -> int:
    """The agent until Ctrl-C/SIGTERM (0) or a refusal (1)."""
    agent = Agent(settings, console)
    failure: str | None = None

    async def watch(scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                console.info("stopping: unbinding the endpoints")
                with trio.move_on_after(5):
                    await agent.stop()
                scope.cancel()
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch, nursery.cancel_scope)
        try:
            await agent.run()
        except* AgentFailed as group:
            failure = str(_first(group))
        nursery.cancel_scope.cancel()
    if failure is not None:
        console.fatal(failure)
        return 1
    return 0


__all__ = ["Agent", "AgentFailed", "backoff", "run_agent"]
