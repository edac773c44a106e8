"""The HTTP/1.1 connection driver: reads requests with the server codec,
hands each to a `ProxyExchange`, and writes the response bytes the codec makes.

One task per connection; exchanges run in it one after another (pipelined
requests wait in the codec's buffer). Response bytes are collected and
written once per upstream read, so a small response costs one send.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

import trio

from edgeward.hookdriver import ERROR_HEADER
from edgeward.hooks import Header, RequestHead
from edgeward.http1 import connection_tokens, framing, strip_hop_by_hop
from edgeward.http1 import events as ev
from edgeward.http1.codec import Codec
from edgeward.proxy import errors
from edgeward.proxy.context import ConnContext
from edgeward.proxy.exchange import WEBSOCKET, ClientBodyError, Metered, ProxyExchange
from edgeward.proxy.transport import Transport
from edgeward.proxy.watchdog import Timer

log = logging.getLogger("edgeward.proxy")

_CONTINUE = ev.InformationalResponse(100, [], reason=b"Continue")


class Http1Connection:
    """Also the `Downstream` of the exchange in progress."""

    __slots__ = (
        "_aborted",
        "_body_done",
        "_expect_continue",
        "_head_started",
        "_out",
        "_trailers",
        "codec",
        "ctx",
        "idle",
        "response_started",
        "scope",
        "timer",
        "transport",
    )

    def __init__(self, ctx: ConnContext, transport: Transport, codec: Codec) -> None:
        self.ctx = ctx
        self.transport = transport
        self.codec = codec
        self._out: list[bytes] = []
        self.response_started = False
        self._body_done = True
        self._expect_continue = False
        self._trailers: list[Header] = []
        self._aborted = False
        self.scope = trio.CancelScope()  # cancelled by the watchdog when the head is late
        self.timer = Timer()
        self.idle = False  # between requests: a drain may close it
        self._head_started = False

    async def run(self, initial: bytes = b"") -> None:
        watchdog = self.ctx.services.watchdog
        self.timer = watchdog.add()
        send_timer = watchdog.add()
        self.transport.send_timeout = (send_timer, self.ctx.config.timeouts.client_send)
        try:
            with self.scope:
                await self._serve(initial)
            if self.scope.cancelled_caught and self._head_started:
                await self._reject(errors.REQUEST_TIMEOUT)
        finally:
            watchdog.remove(self.timer)
            watchdog.remove(send_timer)

    async def _serve(self, initial: bytes) -> None:
        codec = self.codec
        if initial:
            codec.receive_data(initial)
        services = self.ctx.services
        scheme = self.ctx.runtime.listener.scheme.encode()  # a listener keeps its scheme
        timer = self.timer
        expire = self.scope.cancel
        got_bytes = bool(initial)
        while True:
            # --- a complete request head, under the idle / slowloris deadline
            self.idle = not got_bytes
            self._head_started = got_bytes
            if self.idle and services.draining:
                return
            timeouts = self.ctx.config.timeouts  # the generation's (`ConnContext.current`)
            timer.arm(timeouts.header_read if got_bytes else timeouts.keep_alive, expire)
            try:
                while True:
                    request = codec.next_event()
                    if request is not ev.NEED_DATA:
                        break
                    # between requests: the next one comes after our response
                    transport = self.transport
                    data = await (transport.recv() if got_bytes else transport.recv_reply())
                    if not got_bytes and data:
                        got_bytes = self._head_started = True
                        self.idle = False
                        timer.arm(timeouts.header_read, expire)
                    codec.receive_data(data)
                    if not data:
                        break
            except ev.ProtocolError as exc:
                timer.disarm()
                error = errors.BY_PROTOCOL_STATUS.get(exc.status_hint, errors.BAD_REQUEST)
                await self._reject(error, str(exc))
                return
            except OSError:
                return
            timer.disarm()
            self.idle = self._head_started = False
            if type(request) is not ev.Request:
                return  # closed between requests
            # --- one exchange
            exchange = self._begin(request, scheme)
            if exchange is None:
                return
            try:
                keep = await exchange.run()
            except ClientBodyError:
                return
            if (
                not keep
                or self._aborted
                or not self._body_done
                or not codec.keep_alive
                or services.draining
            ):
                return
            try:
                codec.start_next_cycle()
            except ev.LocalProtocolError:
                return
            self.response_started = False
            got_bytes = False

    def _begin(self, request: ev.Request, scheme: bytes) -> ProxyExchange | None:
        """The exchange of a request (None: the connection cannot go on)."""
        ctx = self.ctx.current()  # after a reload or an API change: the new rules
        if ctx is None:
            return None  # its listener is gone
        self.ctx = ctx
        headers = request.headers
        authority = b""
        lengths: list[bytes] | None = None  # (a GET allocates nothing for these)
        codings: list[bytes] | None = None
        upgrade: list[bytes] = []
        self._expect_continue = False
        for name, value in headers:
            if name == b"host":
                authority = value
            elif name == b"content-length":
                lengths = [*lengths, value] if lengths else [value]
            elif name == b"transfer-encoding":
                codings = [*codings, value] if codings else [value]
            elif name == b"expect":
                self._expect_continue = value.lower() == b"100-continue"
            elif name == b"upgrade":
                upgrade.append(value)
        has_body = False
        if lengths or codings:
            try:  # the codec checked these already
                has_body = framing.has_body(*framing.body_framing(lengths, codings))
            except framing.FramingError:
                return None
        target = request.target
        if target[:1] != b"/" and (target.startswith((b"http://", b"https://"))):
            rest = target.split(b"://", 1)[1]
            slash = rest.find(b"/")
            authority, target = (rest, b"/") if slash < 0 else (rest[:slash], rest[slash:])
        head = RequestHead(
            request.method,
            target,
            authority,
            scheme,
            strip_hop_by_hop(headers),
            request.http_version,
        )
        self._body_done = not has_body
        self._trailers = []
        if not has_body:
            try:
                self.codec.next_event()  # the EndOfMessage of a body-less request
            except ev.ProtocolError:
                return None
        return ProxyExchange(
            self.ctx, self, head, has_body, bool(upgrade) and _websocket(request, upgrade)
        )

    # --- Downstream ---------------------------------------------------------------

    @property
    def request_trailers(self) -> list[Header]:
        return self._trailers

    async def receive_body(self) -> bytes:
        if self._body_done:
            return b""
        codec = self.codec
        if self._expect_continue:
            self._expect_continue = False
            await self._send_now(codec.send(_CONTINUE))
        timeout = self.ctx.config.timeouts.body_read
        while True:
            try:
                event = codec.next_event()
            except ev.ProtocolError as exc:
                raise ClientBodyError(
                    errors.BY_PROTOCOL_STATUS.get(exc.status_hint, errors.BAD_REQUEST)
                ) from None
            cls = type(event)
            if cls is ev.Data:
                return event.data  # type: ignore[union-attr]
            if cls is ev.EndOfMessage:
                self._body_done = True
                self._trailers = event.headers  # type: ignore[union-attr]
                return b""
            if event is not ev.NEED_DATA:
                raise ClientBodyError(None)
            with trio.move_on_after(timeout) as scope:
                try:
                    data = await self.transport.recv()
                except OSError:
                    raise ClientBodyError(None) from None
            if scope.cancelled_caught:
                raise ClientBodyError(errors.REQUEST_TIMEOUT)
            codec.receive_data(data)
            if not data:
                raise ClientBodyError(None)  # the client went away mid-body

    def start_response(self, status: int, headers: list[Header]) -> None:
        self.response_started = True
        reason = _REASONS.get(status, b"")
        try:
            if status < 200:
                self._out.append(
                    self.codec.send(ev.InformationalResponse(status, headers, reason=reason))
                )
            else:
                self._out.append(self.codec.send(ev.Response(status, headers, reason=reason)))
        except ev.LocalProtocolError as exc:
            log.warning("cannot send response %s: %s", status, exc)
            self.abort()

    async def send_data(self, data: bytes) -> None:
        if not self._aborted:
            self._out.append(self.codec.send(ev.Data(data)))

    def end_response(self, trailers: list[Header]) -> None:
        if not self._aborted:
            try:
                self._out.append(self.codec.send(ev.EndOfMessage(trailers)))
            except ev.LocalProtocolError:
                self._out.append(self.codec.send(ev.EndOfMessage()))

    async def flush(self) -> None:
        out = self._out
        if out and not self._aborted:
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            try:
                await self.transport.send(data)
            except OSError:
                self.abort()
                raise ClientBodyError(None) from None

    def abort(self) -> None:
        self._aborted = True
        self._out.clear()
        self.transport.close()

    def close_connection(self) -> None:
        self.abort()

    async def relay_upgraded(
        self, upstream: Transport, upstream_leftover: bytes, meter: Metered
    ) -> None:
        client_leftover, _ = self.codec.trailing_data
        self._aborted = True  # the connection is a byte pipe from now on
        try:
            if client_leftover:
                await upstream.send(client_leftover)
                meter.bytes_in += len(client_leftover)
            if upstream_leftover:
                await self.transport.send(upstream_leftover)
                meter.bytes_out += len(upstream_leftover)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pipe, self.transport, upstream, meter, True)
                nursery.start_soon(_pipe, upstream, self.transport, meter, False)
        finally:
            self.transport.close()

    # --- helpers ------------------------------------------------------------------

    async def _send_now(self, data: bytes) -> None:
        try:
            await self.transport.send(data)
        except OSError:
            raise ClientBodyError(None) from None

    async def _reject(self, error: errors.EdgeError, detail: str = "") -> None:
        """Answer a request we could not even parse, then close."""
        rid = self.ctx.services.request_id()
        answer = error.response(rid.decode())  # no usable Accept: plain text
        body = answer.body
        head = (
            f"HTTP/1.1 {error.status} {_REASONS.get(error.status, b'').decode()}\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n"
        ).encode()
        for name, value in answer.headers:
            head += name + b": " + value + b"\r\n"
        head += ERROR_HEADER + b": " + error.code.encode() + b"\r\n"
        head += b"edgeward-request-id: " + rid + b"\r\n\r\n"
        try:
            with trio.move_on_after(1):
                await self.transport.send(head + body)
        except OSError:
            pass
        self.ctx.services.stats.rejected(error.status, "HTTP/1.1")
        self.ctx.services.access_log.write(
            client_ip=self.ctx.info.client_ip,
            status=error.status,
            error=error.code,
            detail=detail[:200],
        )


def _websocket(request: ev.Request, upgrade: list[bytes]) -> bool:
    """Whether a request with Upgrade fields asks for WebSocket (RFC 6455
    §4.1: GET, HTTP/1.1, `Connection: upgrade`, `Upgrade: websocket`), the
    one protocol switch the edge forwards. Any other (h2c with its
    HTTP2-Settings, TLS/1.0, a list) is dropped with the hop-by-hop fields
    and the request answered as HTTP/1.1: bytes after a switch would reach
    the upstream without the policy seeing them."""
    return (
        request.method == b"GET"
        and request.http_version == b"1.1"
        and len(upgrade) == 1
        and upgrade[0].strip().lower() == WEBSOCKET
        and b"upgrade" in connection_tokens(request.headers)
    )


async def _pipe(source: Transport, sink: Transport, meter: Metered, inbound: bool) -> None:
    """Copy until `source` ends, counting (`inbound`: client → upstream)."""
    try:
        while data := await source.recv():
            await sink.send(data)
            if inbound:
                meter.bytes_in += len(data)
            else:
                meter.bytes_out += len(data)
    except OSError:
        source.close()
        sink.close()
        return
    if sink.tls is not None or source.tls is not None:
        source.close()  # no reliable half-close over TLS: end both ways
        sink.close()
    else:
        sink.shutdown_write()


_REASONS = {int(s): s.phrase.encode() for s in HTTPStatus}
