"""One request/response exchange, written once for HTTP/1.1 and HTTP/2.

The protocol drivers turn the client's bytes into a `RequestHead` and hand
it here with a `Downstream` (the client side of this one exchange). This
module routes it, runs the policy hooks (only when the endpoint or listener
has a policy), forwards it to the upstream over a pooled HTTP/1.1
connection or a multiplexed HTTP/2 one (`upstream_h2`, whose streams hand
back the same response events), and streams the response back. Bodies
stream both ways chunk by chunk: memory per exchange is bounded by one
socket read.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, cast

import trio

from edgeward.config import Endpoint
from edgeward.hookdriver import ChainedHooks, HookFlow, drive, filter_whole, record
from edgeward.hooks import (
    Await,
    BodyFilter,
    CloseConnection,
    Effect,
    EffectResult,
    EndpointInfo,
    ExchangeHooks,
    ExchangeSummary,
    Fetch,
    FetchResult,
    FindInternal,
    ForwardInternal,
    Header,
    Hooked,
    InternalError,
    LocalResponse,
    Offload,
    PassResponse,
    PolicyHooks,
    ReadBody,
    ReadResponseBody,
    RequestHead,
    RequestOutcome,
    ResponseHead,
    ResponseOutcome,
    needs_io,
)
from edgeward.http1 import add_forwarding, strip_hop_by_hop
from edgeward.http1 import events as ev
from edgeward.http1.codec import Codec
from edgeward.http1.framing import LENGTH, FramingError, framing_of
from edgeward.proxy import errors, subrequest
from edgeward.proxy.context import ConnContext
from edgeward.proxy.inspector import REPLAY_HEADER
from edgeward.proxy.transport import Transport
from edgeward.proxy.upstream import Pool, UpstreamConnection
from edgeward.proxy.upstream_h2 import (
    H2UpstreamPool,
    H2UpstreamStream,
    Refused,
    request_headers,
)
from edgeward.proxy.watchdog import Timer
from edgeward.urlpath import PathError, normalize_target

log = logging.getLogger("edgeward.proxy")

IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
REQUEST_ID = b"edgeward-request-id"
WEBSOCKET = b"websocket"  # the one protocol a client may switch to (RFC 6455)
MAX_INTERNAL_HOPS = 5  # internal endpoints one request may pass through (and its http-requests)


class ClientBodyError(Exception):
    """Reading the request body failed: `error` is the answer to give, or
    None when the client is gone."""

    def __init__(self, error: errors.EdgeError | None) -> None:
        super().__init__(error.code if error else "client gone")
        self.error = error


class Downstream(Protocol):
    """The client side of one exchange (an HTTP/1 connection or an HTTP/2
    stream). Response methods buffer; `flush` writes."""

    response_started: bool
    timer: Timer  # armed by the exchange while it waits for the upstream

    async def receive_body(self) -> bytes:
        """The next chunk of the request body; b"" at its end. Raises
        `ClientBodyError`."""

    @property
    def request_trailers(self) -> list[Header]: ...

    def start_response(self, status: int, headers: list[Header]) -> None: ...

    async def send_data(self, data: bytes) -> None: ...

    def end_response(self, trailers: list[Header]) -> None: ...

    async def flush(self) -> None: ...

    def abort(self) -> None:
        """Give up on the exchange without (more of) an answer: close the
        connection (HTTP/1) or reset the stream (HTTP/2)."""

    def close_connection(self) -> None:
        """Close the whole client connection (an `on_tcp_connect` said no)."""

    async def relay_upgraded(
        self, upstream: Transport, upstream_leftover: bytes, meter: Metered
    ) -> None:
        """After a 101: pass bytes both ways until either side closes (HTTP/1),
        adding what went to the upstream to `meter.bytes_in` and what came
        back to `meter.bytes_out` as it goes."""


class Metered(Protocol):
    """The byte counts of an exchange (for the access log and on_complete)."""

    bytes_in: int
    bytes_out: int


class ProxyExchange:
    """One request/response in flight through the proxy (the client side,
    the upstream leg, the policy's hooks, the access log); `run()` does the
    work. The policy's side of it is `edgeward.policy.PolicyExchange`."""

    __slots__ = (
        "_body_buffer",
        "_h2",
        "_held",
        "_local_body",
        "_timed_out",
        "_upstream",
        "_visited",
        "bytes_in",
        "bytes_out",
        "ctx",
        "down",
        "endpoint",
        "error_code",
        "flow",
        "has_body",
        "head",
        "request_filter",
        "rid",
        "started",
        "status",
        "upstream_url",
        "websocket",
    )

    def __init__(
        self,
        ctx: ConnContext,
        down: Downstream,
        head: RequestHead,
        has_body: bool,
        websocket: bool = False,
    ) -> None:
        self.websocket = websocket  # a WebSocket upgrade to forward (HTTP/1.1)
        self._timed_out = False
        self._upstream: UpstreamConnection | None = None
        self._h2: H2UpstreamStream | None = None  # the request's stream to an HTTP/2 upstream
        self.ctx = ctx
        self.down = down
        self.head = head
        self.has_body = has_body
        self.started = time.monotonic()
        self.rid = ctx.services.request_id()  # the edgeward-request-id value
        self.endpoint: Endpoint | None = None
        self.flow: HookFlow | None = None  # the policy's hooks, when there is a policy
        self.status = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.error_code: str | None = None
        self.upstream_url: str | None = None
        self._body_buffer: bytes | None = None
        self.request_filter: BodyFilter | None = None  # a policy transforms the request body
        # Response events read ahead for a response check (ReadResponseBody),
        # relayed before any other; the body of an edge-made answer.
        self._held: list[ev.Event] = []
        self._local_body: bytes | None = None
        self._visited: list[str] = []  # internal endpoints entered (forward-internal)

    @property
    def request_id(self) -> str:
        return self.rid.decode()

    async def run(self) -> bool:
        """Returns False when the connection must not carry another exchange."""
        ctx = self.ctx
        head = self.head
        runtime = ctx.runtime
        try:
            if head.method == b"CONNECT":
                # Not a forward proxy: a tunnel to wherever the client names
                # would carry bytes no policy sees. Answered before routing.
                await self._local(self._error(errors.CONNECT_NOT_ALLOWED))
                return False  # optimistic tunnel bytes may follow: not HTTP
            endpoint = self.endpoint = runtime.router.route(head.authority)
            trace: list[Any] | None = None
            if ctx.services.taps and endpoint is not None:  # the traffic inspector: opt-in
                trace = self._inspect(endpoint)
            listener_policy = runtime.listener.policy
            if listener_policy is not None and not self._tcp_allowed(
                None, listener_policy, runtime.listener_info
            ):
                return False
            if (
                endpoint is not None
                and endpoint.policy is not None
                and not self._tcp_allowed(
                    endpoint, endpoint.policy, runtime.endpoint_infos[endpoint.name]
                )
            ):
                return False
            # One path for routing, policy, the access log and the upstream.
            try:
                head.target = normalize_target(
                    head.target, endpoint.escaped_slashes if endpoint else "reject"
                )
            except PathError as exc:
                error = errors.ENCODED_SLASH if exc.escaped_slash else errors.BAD_PATH
                await self._local(self._error(error))
                return True
            if listener_policy is None and (endpoint is None or endpoint.policy is None):
                if endpoint is None:
                    await self._local(self._error(errors.ENDPOINT_NOT_FOUND))
                    return True
                return await self._forward(endpoint, head, None)
            routed = await self._with_hooks(endpoint, head, trace)
            if isinstance(routed, bool):
                return routed
            # Forwarded from here, not from inside the policy's coroutines:
            # every wake-up of the upstream exchange resumes through each
            # coroutine it is awaited in.
            return await self._forward(*routed)
        finally:
            self._complete()

    def _tcp_allowed(
        self, endpoint: Endpoint | None, policy: PolicyHooks, info: EndpointInfo
    ) -> bool:
        """Run `policy`'s on_tcp_connect when it is due on this connection
        (`ConnContext.tcp_check_due`: the first exchange there, or the first
        after a reload replaced the policy); False when it refused: the
        connection ends."""
        ctx = self.ctx
        if not ctx.tcp_check_due(endpoint, policy) or policy.on_tcp_connect(ctx.info, info):
            return True
        self.down.close_connection()
        self.error_code = "tcp_connect_denied"
        return False

    def _inspect(self, endpoint: Endpoint) -> list[Any] | None:
        """When `endpoint` is inspected: capture this exchange (its client
        side teed, `inspector.TapDownstream`); the list its policy's trace
        goes in. Only exchanges of inspected endpoints come here: the one
        the client addressed, or an internal one a policy forwarded it to
        (then the trace starts at that endpoint's policy)."""
        tap = self.ctx.services.taps.get(endpoint.name)
        if tap is None:
            return None
        self.down, trace = tap.begin(
            self.down, self.head, self.ctx.info, self.ctx.services.inspector
        )
        return trace

    # --- policy -------------------------------------------------------------------

    async def _with_hooks(
        self, endpoint: Endpoint | None, head: RequestHead, trace: list[Any] | None = None
    ) -> _Upstream | bool:
        ctx = self.ctx
        runtime = ctx.runtime
        info = runtime.endpoint_infos[endpoint.name] if endpoint else runtime.listener_info
        hooks: ExchangeHooks | None = None
        listener_policy = runtime.listener.policy
        if endpoint is not None and endpoint.policy is not None:
            hooks = endpoint.policy.begin(ctx.info, info, head, self.request_id)
        if listener_policy is not None:
            outer = listener_policy.begin(ctx.info, info, head, self.request_id)
            hooks = outer if hooks is None else ChainedHooks(outer, hooks)
        if trace is not None and hooks is not None:
            record(hooks, trace)
        flow = self.flow = HookFlow(hooks)
        outcome = await self._request_phase(flow.request, head)
        return await self._route(endpoint, flow, outcome, trace)

    async def _route(
        self,
        endpoint: Endpoint | None,
        flow: HookFlow,
        outcome: RequestOutcome,
        trace: list[Any] | None = None,
    ) -> _Upstream | bool:
        """Act on a request outcome: into internal endpoints while it is a
        `ForwardInternal`, then answer or close (whether the connection may
        carry another exchange), or what to forward (`_forward`'s arguments)."""
        ctx = self.ctx
        while isinstance(outcome, ForwardInternal):  # into an internal endpoint's policy
            target = self.ctx.internal(outcome.url)
            if isinstance(target, InternalError):  # gone since the policy asked
                await self._local(_internal_answer(target))
                return True
            endpoint, info = target
            self._visited.append(endpoint.name)
            if trace is None and ctx.services.taps:  # an inspected internal endpoint
                trace = self._inspect(endpoint)
            if outcome.body is not None:
                self._body_buffer = outcome.body
            policy = endpoint.policy
            inner: ExchangeHooks | None = None
            if policy is not None:
                if not self._tcp_allowed(endpoint, policy, info):
                    return False
                inner = policy.begin(ctx.info, info, outcome.head, self.request_id)
                if trace is not None:
                    record(inner, trace)
                self.flow = flow
            outcome = await self._request_phase(flow.enter, outcome, inner)
        if isinstance(outcome, CloseConnection):
            self.down.close_connection()  # close-connection: the whole connection (§3.3)
            self.error_code = "closed_by_policy"
            return False
        if isinstance(outcome, LocalResponse):
            await self._local(outcome)
            return True
        if endpoint is None:
            await self._local(self._error(errors.ENDPOINT_NOT_FOUND))
            return True
        body, stream_filter = flow.request_body(outcome, self._body_buffer)
        if stream_filter is not None and self.has_body:  # streamed through it (`_upload`), chunked
            self.request_filter = stream_filter
        return _Upstream(endpoint, outcome.head, body)

    async def _request_phase(
        self, phase: Callable[..., Hooked[RequestOutcome]], *args: object
    ) -> RequestOutcome:
        """A request phase (`HookFlow.request`, `.enter`): its outcome (500
        when it fails)."""
        try:
            hooked = phase(*args)
            if needs_io(hooked):
                return await drive(hooked, self._perform)
            return hooked
        except (ClientBodyError, trio.Cancelled):
            raise
        except Exception:
            log.exception("traffic policy failed in on_http_request (request %s)", self.request_id)
            return self._error(errors.POLICY_FAILED)

    def _find_internal(self, url: str) -> InternalError | None:
        """May this exchange go on to the internal endpoint `url`? The one
        check for forward-internal and http-request: it exists and is
        online, at most `MAX_INTERNAL_HOPS` endpoints, none twice."""
        target = self.ctx.internal(url)
        if isinstance(target, InternalError):
            return target
        name = target[0].name
        if name in self._visited:
            return _loop(f"internal endpoint loop: {url} was already passed through")
        if len(self._visited) >= MAX_INTERNAL_HOPS:
            return _loop(f"a request may only pass through {MAX_INTERNAL_HOPS} internal endpoints")
        return None

    async def _fetch_internal(self, fetch: Fetch) -> FetchResult:
        """A `Fetch` of an internal endpoint (http-request): a sub-exchange
        on it, the same code that serves clients (its policy, then its
        upstream or agent), with an in-memory client side. It inherits the
        internal endpoints this exchange passed through (loops, hop limit)."""
        refusal = self._find_internal(fetch.url)
        if refusal is not None:
            return subrequest.refused(refusal)
        timer = self.ctx.services.watchdog.add()
        down = subrequest.FetchDownstream(fetch, timer)
        sub = ProxyExchange(self.ctx, down, subrequest.request_head(fetch), bool(fetch.body))
        sub._visited = list(self._visited)
        try:
            with trio.move_on_after(fetch.timeout_s) as scope, down.scope:
                await sub.run_internal(fetch.url)
        finally:
            self.ctx.services.watchdog.remove(timer)
        return down.result(timed_out=scope.cancelled_caught)

    async def run_internal(self, url: str) -> None:
        """Serve this exchange (made by `_fetch_internal`) on the internal
        endpoint `url`: as if a policy had forwarded it there, without a
        listener's policy (it is the edge's own request)."""
        try:
            target = self.ctx.internal(url)
            if not isinstance(target, InternalError):
                self.endpoint = target[0]
            routed = await self._route(
                None, HookFlow(None), ForwardInternal(url, self.head, None, None)
            )
            if not isinstance(routed, bool):
                await self._forward(*routed)
        finally:
            self._complete()

    async def _perform(self, effect: Effect) -> EffectResult:
        if isinstance(effect, ReadBody):
            return await self._read_body(effect.limit)
        if isinstance(effect, Fetch):
            if subrequest.is_internal(effect.url):
                return await self._fetch_internal(effect)
            return await self.ctx.services.fetch(effect)
        if isinstance(effect, Await):
            try:
                return await effect.call()
            except Exception as exc:  # handed to the hook, which decides
                return exc
        if isinstance(effect, Offload):
            try:
                return await trio.to_thread.run_sync(effect.call)
            except Exception as exc:  # handed to the hook, which decides
                return exc
        if isinstance(effect, ReadResponseBody):
            return await self._read_response_prefix(effect.limit)
        if isinstance(effect, FindInternal):
            return self._find_internal(effect.url)
        raise TypeError(f"unknown effect {effect!r}")

    async def _read_body(self, limit: int) -> bytes | None:
        """Buffer the request body for a hook (at most once per exchange)."""
        if self._body_buffer is not None:
            return self._body_buffer if len(self._body_buffer) <= limit else None
        if not self.has_body:
            self._body_buffer = b""
            return b""
        limit = min(limit, self.ctx.config.limits.max_hook_body_bytes)
        chunks = []
        size = 0
        while chunk := await self.down.receive_body():
            size += len(chunk)
            if size > limit:
                self.has_body = True  # the rest is unread: the body cannot be forwarded
                self._body_buffer = None
                return None
            chunks.append(chunk)
        self._body_buffer = b"".join(chunks)
        self.bytes_in = size
        self.has_body = False
        return self._body_buffer

    async def _response_outcome(
        self, head: ResponseHead
    ) -> PassResponse | LocalResponse | CloseConnection:
        assert self.flow is not None
        try:
            hooked = self.flow.response(head)
            if needs_io(hooked):
                return await drive(hooked, self._perform)
            return hooked
        except trio.Cancelled:
            raise
        except Exception:
            log.exception("traffic policy failed in on_http_response (request %s)", self.request_id)
            return self._error(errors.POLICY_FAILED)

    # --- answers made here ----------------------------------------------------------

    async def _local(self, response: LocalResponse, *, run_hooks: bool = True) -> None:
        """Answer from the edge; the response phase of the policy sees it too."""
        down = self.down
        if down.response_started:
            down.abort()
            return
        head = HookFlow.answer_head(response)
        status, headers = head.status, head.headers
        body = response.body
        if response.error_code:
            self.error_code = response.error_code
        if self.flow is not None and run_hooks:
            self._local_body = body
            outcome = await self._response_outcome(head)
            if isinstance(outcome, CloseConnection):
                down.abort()
                return
            if isinstance(outcome, LocalResponse):
                await self._local(outcome, run_hooks=False)
                return
            status, headers = outcome.head.status, outcome.head.headers
            if outcome.body_filter is not None:
                body = filter_whole(outcome.body_filter, body)
        headers = [h for h in headers if h[0] != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        headers.append((REQUEST_ID, self.rid))
        self.status = status
        down.start_response(status, headers)
        if body and self.head.method != b"HEAD":
            await down.send_data(body)
            self.bytes_out += len(body)
        down.end_response([])
        await down.flush()

    def _error(self, error: errors.EdgeError) -> LocalResponse:
        """The edge's own answer for `error`, in the format the client accepts."""
        return error.response(self.request_id, errors.accept_of(self.head.headers))

    async def _fail(self, error: errors.EdgeError, detail: str = "") -> None:
        """Answer `error`; `detail` (an upstream address, errno text) is for
        the operator log only, never for the public body."""
        self.error_code = error.code
        if detail:
            log.warning("request %s: %s %s: %s", self.request_id, error.code, error.message, detail)
        if self.down.response_started:
            self.down.abort()
        else:
            await self._local(self._error(error))

    # --- forwarding -------------------------------------------------------------------

    def _upstream_request(
        self, endpoint: Endpoint, head: RequestHead, body: bytes | None
    ) -> ev.Request:
        ctx = self.ctx
        headers = add_forwarding(
            head.headers,
            ctx.info.client_ip,
            head.scheme,
            head.authority,
            trusted=ctx.trusted_peer,
        )
        mode = endpoint.host_header
        if mode == "preserve":
            host = head.authority
        elif mode == "upstream":
            host = endpoint.upstream.authority.encode()
        else:
            host = mode.encode()
        out = [(b"host", host)]
        for name, value in headers:
            if name not in _NOT_FORWARDED:
                out.append((name, value))
        if body is not None:
            out.append((b"content-length", str(len(body)).encode()))
        elif self.has_body:
            length = _declared_length(head.headers) if self.request_filter is None else None
            if length is None:
                out.append((b"transfer-encoding", b"chunked"))
            else:
                out.append((b"content-length", b"%d" % length))
        out.append((REQUEST_ID, self.rid))
        return ev.Request(head.method, head.target, out, b"1.1")

    async def _forward(self, endpoint: Endpoint, head: RequestHead, body: bytes | None) -> bool:
        ctx = self.ctx
        limits = ctx.config.limits
        if self.has_body and body is None and limits.max_body_bytes:
            length = _declared_length(head.headers)
            if length is not None and length > limits.max_body_bytes:
                await self._fail(errors.BODY_TOO_LARGE)
                return False
        request = self._upstream_request(endpoint, head, body)
        pool = ctx.pool(endpoint)
        self.upstream_url = endpoint.upstream.url
        if isinstance(pool, H2UpstreamPool):
            return await self._forward_h2(pool, request, body)
        if self.websocket:
            request.headers += [(b"connection", b"upgrade"), (b"upgrade", WEBSOCKET)]
        streaming = self.has_body and body is None
        retry_ok = head.method in IDEMPOTENT and not streaming
        for attempt in (0, 1):
            conn = pool.take() if attempt == 0 else None
            if conn is None:
                try:
                    conn = await pool.open()
                except errors.UpstreamFailure as failure:
                    await self._fail(failure.error, failure.detail)
                    return True
            try:
                if streaming:
                    return await self._exchange_streaming(pool, conn, request, head.method)
                try:
                    await conn.transport.send(_whole_request(conn.codec, request, body))
                except OSError:
                    raise _Stale from None
                return await self._relay_response(pool, conn, head.method, None)
            except _Stale:
                conn.transport.close()
                if not (retry_ok and conn.reused and attempt == 0):
                    await self._fail(errors.UPSTREAM_RESET, endpoint.upstream.url)
                    return True
            except errors.UpstreamFailure as failure:
                conn.transport.close()
                await self._fail(failure.error, failure.detail)
                return not self.down.response_started
            except ClientBodyError as exc:
                conn.transport.close()
                if exc.error is None:
                    self.down.abort()
                    return False
                await self._fail(exc.error)
                return False
            except BaseException:
                conn.transport.close()
                raise
        raise AssertionError("unreachable")

    async def _exchange_streaming(
        self, pool: Pool, conn: UpstreamConnection, request: ev.Request, method: bytes
    ) -> bool:
        """The exchange when the request body streams from the client: the
        body is pumped by a second task while the response is relayed."""
        try:
            await conn.transport.send(conn.codec.send(request))
        except OSError:
            raise _Stale from None
        state = _Upload()
        failure: Exception | None = None
        keep = False
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._upload, conn, state, nursery.cancel_scope)
            try:
                keep = await self._relay_response(pool, conn, method, state)
            except (errors.UpstreamFailure, _Stale, ClientBodyError) as exc:
                failure = exc  # raised below: out of a nursery it would come wrapped in a group
            nursery.cancel_scope.cancel()
        if state.error is not None:
            raise state.error
        if isinstance(failure, _Stale):
            raise errors.UpstreamFailure(errors.UPSTREAM_RESET, "upstream closed before responding")
        if failure is not None:
            raise failure
        return keep and state.done

    async def _upload(
        self, conn: UpstreamConnection, state: _Upload, scope: trio.CancelScope
    ) -> None:
        """Client body -> upstream, chunk by chunk (each send waits for the
        upstream to take it: that is the backpressure)."""
        down = self.down
        codec = conn.codec
        limit = self.ctx.config.limits.max_body_bytes
        filt = self.request_filter
        try:
            while True:
                chunk = await down.receive_body()
                if not chunk:
                    tail = filt.finish() if filt is not None else b""
                    end = codec.send(ev.EndOfMessage(down.request_trailers))
                    await conn.transport.send(codec.send(ev.Data(tail)) + end if tail else end)
                    state.done = True
                    return
                self.bytes_in += len(chunk)
                if limit and self.bytes_in > limit:
                    raise ClientBodyError(errors.BODY_TOO_LARGE)
                if filt is not None:
                    chunk = filt.feed(chunk)
                    if not chunk:
                        continue
                await conn.transport.send(codec.send(ev.Data(chunk)))
                timer = down.timer
                if timer.deadline != math.inf:  # the upstream is taking the body: not late
                    timer.arm(self.ctx.config.timeouts.upstream_response, self._upstream_timed_out)
        except ClientBodyError as exc:
            state.error = exc
            scope.cancel()
        except OSError:
            state.upstream_broken = True  # the upstream may still answer; the reader decides

    def _upstream_timed_out(self) -> None:
        """Watchdog callback: the upstream is late. Closing its socket wakes
        the pending read, which then reports the timeout."""
        self._timed_out = True
        if self._upstream is not None:
            self._upstream.transport.close()

    def _recv_failure(self, exc: OSError, first: bool) -> Exception:
        """What a failed read of the upstream's response means."""
        if self._timed_out:
            return errors.UpstreamFailure(errors.UPSTREAM_TIMEOUT, self.upstream_url or "")
        if first:
            return _Stale()
        return errors.UpstreamFailure(errors.UPSTREAM_RESET, str(exc))

    async def _relay_response(
        self, pool: Pool, conn: UpstreamConnection, method: bytes, upload: _Upload | None
    ) -> bool:
        down = self.down
        codec = conn.codec
        up = conn.transport
        timer = down.timer
        timeout = self.ctx.config.timeouts.upstream_response
        self._upstream = conn
        filt: BodyFilter | None = None
        first = True
        while True:
            timer.arm(timeout, self._upstream_timed_out)
            try:
                data = await (up.recv_reply() if first else up.recv())
            except OSError as exc:
                raise self._recv_failure(exc, first) from None
            finally:
                timer.disarm()
            if first:
                if not data:
                    raise _Stale
                first = False
            codec.receive_data(data)
            while True:
                event: ev.Event | object
                if self._held:  # read ahead by a response check: relayed first
                    event = self._held.pop(0)
                else:
                    try:
                        event = codec.next_event()
                    except ev.ProtocolError as exc:
                        raise errors.UpstreamFailure(
                            errors.UPSTREAM_BAD_RESPONSE, str(exc)
                        ) from None
                    if event is ev.NEED_DATA:
                        break
                cls = type(event)
                if cls is ev.Data:
                    chunk = event.data  # type: ignore[union-attr]
                    if filt is not None:
                        chunk = filt.feed(chunk)
                    if chunk:
                        self.bytes_out += len(chunk)
                        await down.send_data(chunk)
                elif cls is ev.Response:
                    filt = await self._relay_head(event, conn.transport.close)  # type: ignore[arg-type]
                    if filt is _CLOSED:
                        return False
                elif cls is ev.EndOfMessage:
                    await self._end_body(filt, event.headers)  # type: ignore[union-attr]
                    if codec.keep_alive and (upload is None or upload.done):
                        pool.release(conn)
                    else:
                        conn.transport.close()
                    return upload is None or upload.done
                elif cls is ev.InformationalResponse:
                    if event.status_code == 101:  # type: ignore[union-attr]
                        await self._upgraded(conn, event)  # type: ignore[arg-type]
                        return False
                    # other 1xx (100, 103): we answer 100-continue ourselves
                else:  # ConnectionClosed / PAUSED: the upstream ended the exchange early
                    raise errors.UpstreamFailure(
                        errors.UPSTREAM_RESET, "upstream closed mid-response"
                    )
            await down.flush()

    # --- HTTP/2 upstreams ---------------------------------------------------------------

    async def _forward_h2(
        self, pool: H2UpstreamPool, request: ev.Request, body: bytes | None
    ) -> bool:
        """Forward on a stream of a multiplexed HTTP/2 connection
        (`upstream_h2`); the response comes back as the HTTP/1 events the
        HTTP/1.1 leg relays. A stream the upstream did not process (a
        GOAWAY raced it, REFUSED_STREAM) is sent once more when its body is
        not streaming. A WebSocket upgrade cannot cross (RFC 8441 is not
        supported upstream): 502."""
        if self.websocket:
            await self._fail(errors.UPSTREAM_BAD_RESPONSE, "WebSocket to an HTTP/2 upstream")
            return False
        streaming = self.has_body and body is None
        timeout = self.ctx.config.timeouts.upstream_response
        headers = request_headers(request, pool.scheme)
        for attempt in (0, 1):
            try:
                stream = await pool.open_stream(headers, end_stream=not streaming and not body)
            except errors.UpstreamFailure as failure:
                await self._fail(failure.error, failure.detail)
                return True
            self._h2 = stream
            try:
                if streaming:
                    return await self._exchange_h2_streaming(stream)
                if body:
                    await stream.send_data(body, timeout)
                    await stream.end([], timeout)
                return await self._relay_h2(stream, None)
            except Refused as failure:  # not processed (a GOAWAY raced it): once more
                if attempt or streaming or self.down.response_started:
                    await self._fail(failure.error, failure.detail)
                    return not self.down.response_started
            except errors.UpstreamFailure as failure:
                await self._fail(failure.error, failure.detail)
                return not self.down.response_started
            except ClientBodyError as exc:
                if exc.error is None:
                    self.down.abort()
                    return False
                await self._fail(exc.error)
                return False
            finally:
                stream.close()
        raise AssertionError("unreachable")

    async def _exchange_h2_streaming(self, stream: H2UpstreamStream) -> bool:
        """The request body streams from the client while the response is
        relayed (gRPC's client and bidi streaming need both at once)."""
        state = _Upload()
        failure: Exception | None = None
        keep = False
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._upload_h2, stream, state, nursery.cancel_scope)
            try:
                keep = await self._relay_h2(stream, state)
            except (errors.UpstreamFailure, ClientBodyError) as exc:
                # raised below: out of a nursery it would come wrapped in a group
                # (ClientBodyError: the client reset its stream as the response began)
                failure = exc
            nursery.cancel_scope.cancel()
        if state.error is not None:
            raise state.error
        if failure is not None:
            raise failure
        return keep

    async def _upload_h2(
        self, stream: H2UpstreamStream, state: _Upload, scope: trio.CancelScope
    ) -> None:
        """Client body -> upstream stream, chunk by chunk, within its windows;
        the request's trailers end it."""
        down = self.down
        limit = self.ctx.config.limits.max_body_bytes
        timeout = self.ctx.config.timeouts.upstream_response
        filt = self.request_filter
        try:
            while True:
                chunk = await down.receive_body()
                if not chunk:
                    tail = filt.finish() if filt is not None else b""
                    if tail:
                        await stream.send_data(tail, timeout)
                    await stream.end(down.request_trailers, timeout)
                    state.done = True
                    return
                self.bytes_in += len(chunk)
                if limit and self.bytes_in > limit:
                    raise ClientBodyError(errors.BODY_TOO_LARGE)
                if filt is not None:
                    chunk = filt.feed(chunk)
                    if not chunk:
                        continue
                await stream.send_data(chunk, timeout)
        except ClientBodyError as exc:
            state.error = exc
            scope.cancel()
        except errors.UpstreamFailure:
            state.upstream_broken = True  # the upstream may still answer; the reader decides

    async def _relay_h2(self, stream: H2UpstreamStream, upload: _Upload | None) -> bool:
        """The upstream stream's response to the client. The client side is
        flushed only when no event is waiting, so a response that ended on
        its HEADERS (a trailers-only gRPC answer) leaves as one HEADERS frame
        with END_STREAM to an HTTP/2 client."""
        down = self.down
        timeout = self.ctx.config.timeouts.upstream_response
        filt: BodyFilter | None = None
        while True:
            event: ev.Event | None
            if self._held:  # read ahead by a response check: relayed first
                event = self._held.pop(0)
            else:
                event = stream.next_nowait()
                if event is None:
                    await down.flush()
                    event = await stream.next_event(timeout)
            cls = type(event)
            if cls is ev.Data:
                chunk = event.data  # type: ignore[union-attr]
                if filt is not None:
                    chunk = filt.feed(chunk)
                if chunk:
                    self.bytes_out += len(chunk)
                    await down.send_data(chunk)
            elif cls is ev.Response:
                filt = await self._relay_head(event, stream.close)  # type: ignore[arg-type]
                if filt is _CLOSED:
                    return False
            elif cls is ev.EndOfMessage:
                await self._end_body(filt, event.headers)  # type: ignore[union-attr]
                return upload is None or upload.done

    async def _relay_head(
        self, event: ev.Response, drop_upstream: Callable[[], None]
    ) -> BodyFilter | None:
        """An upstream's response head to the client, through the response
        phase when there is a policy (`_CLOSED`: the policy answered or closed)."""
        if self.flow is None:
            self._send_head(event.status_code, strip_hop_by_hop(event.headers))
            return None
        return await self._start_response(event, drop_upstream)

    async def _end_body(self, filt: BodyFilter | None, trailers: list[Header]) -> None:
        """The end of an upstream's response: what the body filter held back,
        then the trailers, flushed."""
        down = self.down
        if filt is not None:
            tail = filt.finish()
            if tail:
                self.bytes_out += len(tail)
                await down.send_data(tail)
        down.end_response(trailers)
        await down.flush()

    async def _read_h2_prefix(self, stream: H2UpstreamStream, limit: int) -> tuple[bytes, bool]:
        """`_read_response_prefix` on an HTTP/2 upstream stream."""
        timeout = self.ctx.config.timeouts.upstream_response
        chunks = [e.data for e in self._held if isinstance(e, ev.Data)]
        size = sum(len(c) for c in chunks)
        if len(chunks) < len(self._held):  # the message ended
            return b"".join(chunks)[:limit], True
        while size < limit:
            event = await stream.next_event(timeout)
            self._held.append(event)
            if isinstance(event, ev.Data):
                chunks.append(event.data)
                size += len(event.data)
            else:
                return b"".join(chunks)[:limit], True
        return b"".join(chunks)[:limit], False

    async def _read_response_prefix(self, limit: int) -> tuple[bytes, bool]:
        """The first `limit` bytes of the response body and whether that is
        all of it, for a response check: the events read are held and
        relayed afterwards, in order."""
        if self._local_body is not None:
            body = self._local_body
            return body[:limit], len(body) <= limit
        if self._h2 is not None:
            return await self._read_h2_prefix(self._h2, limit)
        conn = self._upstream
        if conn is None:
            return b"", True
        codec = conn.codec
        timer = self.down.timer
        timeout = self.ctx.config.timeouts.upstream_response
        # Events an earlier check (a listener's policy) read ahead count too.
        chunks = [e.data for e in self._held if isinstance(e, ev.Data)]
        size = sum(len(c) for c in chunks)
        if len(chunks) < len(self._held):  # the message (or connection) ended
            return b"".join(chunks)[:limit], True
        while size < limit:
            try:
                event = codec.next_event()
            except ev.ProtocolError as exc:
                raise errors.UpstreamFailure(errors.UPSTREAM_BAD_RESPONSE, str(exc)) from None
            if event is ev.NEED_DATA:
                timer.arm(timeout, self._upstream_timed_out)
                try:
                    data = await conn.transport.recv()
                except OSError as exc:
                    raise self._recv_failure(exc, False) from None
                finally:
                    timer.disarm()
                codec.receive_data(data)
                if not data:
                    break
                continue
            self._held.append(cast(ev.Event, event))
            if isinstance(event, ev.Data):
                chunk = event.data
                chunks.append(chunk)
                size += len(chunk)
            else:  # the end of the message (or of the connection)
                return b"".join(chunks)[:limit], True
        return b"".join(chunks)[:limit], False

    async def _start_response(
        self, event: ev.Response, drop_upstream: Callable[[], None]
    ) -> BodyFilter | None:
        """The response head through the response phase of the policy;
        `drop_upstream` ends the upstream side when the policy answers or
        closes instead."""
        flow = self.flow
        assert flow is not None
        head = ResponseHead(event.status_code, strip_hop_by_hop(event.headers))
        outcome: ResponseOutcome
        try:  # (`_response_outcome` inlined: no coroutine when no I/O is needed)
            hooked = flow.response(head)
            if needs_io(hooked):
                outcome = await drive(hooked, self._perform)
            else:
                outcome = hooked
        except trio.Cancelled:
            raise
        except Exception:
            log.exception("traffic policy failed in on_http_response (request %s)", self.request_id)
            outcome = self._error(errors.POLICY_FAILED)
        if isinstance(outcome, CloseConnection):
            self.down.abort()
            drop_upstream()
            return _CLOSED
        if isinstance(outcome, LocalResponse):
            drop_upstream()
            await self._local(outcome, run_hooks=False)
            return _CLOSED
        passed = flow.passed_head(outcome)
        self._send_head(passed.status, passed.headers)
        return outcome.body_filter

    def _send_head(self, status: int, headers: list[Header]) -> None:
        headers.append((REQUEST_ID, self.rid))
        self.status = status
        self.down.start_response(status, headers)

    async def _upgraded(self, conn: UpstreamConnection, event: ev.InformationalResponse) -> None:
        """The upstream accepted the WebSocket upgrade (the only one the edge
        forwards, after the policy ran): relay bytes both ways."""
        upgrade = next((v for n, v in event.headers if n == b"upgrade"), b"")
        if upgrade.strip().lower() != WEBSOCKET:
            conn.transport.close()
            raise errors.UpstreamFailure(
                errors.UPSTREAM_BAD_RESPONSE, f"101 to {upgrade!r}, not to websocket"
            )
        self.status = 101
        headers = strip_hop_by_hop(event.headers)
        headers += [
            (b"connection", b"upgrade"),
            (b"upgrade", WEBSOCKET),
            (REQUEST_ID, self.rid),
        ]
        self.down.start_response(101, headers)
        await self.down.flush()
        leftover, _ = conn.codec.trailing_data
        try:
            await self.down.relay_upgraded(conn.transport, leftover, self)
        finally:
            conn.transport.close()

    def _complete(self) -> None:
        services = self.ctx.services
        duration = time.monotonic() - self.started
        if self.flow is not None:
            try:
                self.flow.complete(
                    ExchangeSummary(
                        self.status,
                        self.bytes_in,
                        self.bytes_out,
                        duration,
                        self.upstream_url,
                        self.error_code,
                    )
                )
            except Exception:
                log.exception("traffic policy failed in on_complete (request %s)", self.request_id)
        # metrics: plain counters (proxy/metrics.py), exported at scrape time
        version = self.head.http_version
        services.stats.exchange(
            self.endpoint.name if self.endpoint else "",
            self.status,
            _PROTOCOLS.get(version) or f"HTTP/{version.decode()}",
            duration,
            self.error_code,
        )
        if services.access_log.enabled:
            head = self.head
            services.access_log.write(
                request_id=self.request_id,
                client_ip=self.ctx.info.client_ip,
                host=head.authority.decode("latin-1"),
                method=head.method.decode("latin-1"),
                path=head.target.decode("latin-1"),
                protocol=f"HTTP/{head.http_version.decode()}",
                status=self.status,
                bytes_in=self.bytes_in,
                bytes_out=self.bytes_out,
                duration_ms=round(duration * 1000, 3),
                endpoint=self.endpoint.name if self.endpoint else None,
                upstream=self.upstream_url,
                error=self.error_code,
            )


class _Upstream(NamedTuple):
    """What a policy's request phase sends upstream (`_forward`'s arguments)."""

    endpoint: Endpoint
    head: RequestHead
    body: bytes | None


class _Upload:
    __slots__ = ("done", "error", "upstream_broken")

    def __init__(self) -> None:
        self.done = False
        self.error: ClientBodyError | None = None
        self.upstream_broken = False


class _Stale(Exception):
    """The upstream connection failed before any response byte arrived."""


class _ClosedMarker:
    """What `_start_response` returns when the response phase answered or
    closed instead: the upstream response is dropped."""

    def feed(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""


_CLOSED = _ClosedMarker()
_PROTOCOLS = {b"1.1": "HTTP/1.1", b"2": "HTTP/2", b"1.0": "HTTP/1.0"}
# (the inspector's replay mark, too: the edge's own, never an upstream's)
_NOT_FORWARDED = frozenset({b"host", b"content-length", b"expect", REQUEST_ID, REPLAY_HEADER})


def _loop(message: str) -> InternalError:
    error = errors.FORWARD_LOOP
    return InternalError(error.status, error.code, message)


def _internal_answer(error: InternalError) -> LocalResponse:
    """An internal endpoint that went away between the policy's check and
    the forward: the check's own answer."""
    body = f"{error.status} {error.message}\n".encode()
    return LocalResponse(
        error.status, [(b"content-type", b"text/plain; charset=utf-8")], body, error.code
    )


def _whole_request(codec: Codec, request: ev.Request, body: bytes | None) -> bytes:
    """A request without a body, or with one already buffered, on the wire."""
    out = codec.send(request)
    if body:
        out += codec.send(ev.Data(body))
    return out + codec.send(ev.EndOfMessage())


def _declared_length(headers: list[Header]) -> int | None:
    """The length a request body declares (Content-Length, as
    `http1.framing` reads it); None when it declares none: chunked (the
    field is hop-by-hop, gone from the head), an HTTP/2 body without the
    field, or a value HTTP/1.1 cannot frame (h2 takes "+5"): such bodies go
    upstream chunked."""
    try:
        kind, length = framing_of(headers)
    except FramingError:
        return None
    return length if kind == LENGTH and length else None
