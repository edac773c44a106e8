"""The in-memory client side of a sub-exchange: a `Fetch` of an internal
endpoint (http-request to `https://NAME.internal/...`) is served by the
same `ProxyExchange` that serves clients, with this `Downstream` in place of a
connection. It hands the request's body over and collects the answer into
a `FetchResult`, at most `Fetch.max_bytes` of body."""

from __future__ import annotations

from urllib.parse import urlsplit

import trio

from edgeward.hooks import Fetch, FetchResult, Header, InternalError, RequestHead
from edgeward.proxy import errors
from edgeward.proxy.transport import Transport
from edgeward.proxy.watchdog import Timer

INTERNAL_SUFFIX = ".internal"


def is_internal(url: str) -> bool:
    """Whether `url` names an internal endpoint (its host ends in `.internal`)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return host.rstrip(".").endswith(INTERNAL_SUFFIX)


def request_head(fetch: Fetch) -> RequestHead:
    """The request a `Fetch` makes, as a client would have sent it: Host is
    the URL's host (and port)."""
    url = urlsplit(fetch.url)
    target = (url.path or "/") + ("?" + url.query if url.query else "")
    authority = url.netloc.rpartition("@")[2]
    headers: list[Header] = [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in fetch.headers
    ]
    if not any(name == b"user-agent" for name, _ in headers):
        headers.append((b"user-agent", b"edgeward"))
    if fetch.body:
        headers.append((b"content-length", str(len(fetch.body)).encode()))
    return RequestHead(
        fetch.method.encode("latin-1"),
        target.encode("latin-1"),
        authority.encode("latin-1"),
        url.scheme.encode("latin-1"),
        headers,
        b"1.1",
    )


def refused(error: InternalError) -> FetchResult:
    """The answer to a Fetch of an internal endpoint that cannot take it."""
    failure = "loop" if error.code == errors.FORWARD_LOOP.code else "internal"
    return FetchResult(0, error=error.message, failure=failure)


class FetchDownstream:
    """`proxy.exchange.Downstream` for a sub-exchange. Run the exchange
    inside `scope`: an answer larger than the Fetch allows cancels it (its
    upstream connection is closed, as when a client leaves), a cancellation
    rather than an exception so that it crosses the exchange's nurseries
    as it is."""

    def __init__(self, fetch: Fetch, timer: Timer) -> None:
        self.scope = trio.CancelScope()
        self.response_started = False
        self.timer = timer
        self._body = fetch.body
        self._limit = fetch.max_bytes
        self._status = 0
        self._headers: tuple[tuple[str, str], ...] = ()
        self._chunks: list[bytes] = []
        self._size = 0
        self._ended = False
        self._failure: tuple[str, str] | None = None  # (kind, message)

    async def receive_body(self) -> bytes:
        body, self._body = self._body, b""
        return body

    @property
    def request_trailers(self) -> list[Header]:
        return []

    def start_response(self, status: int, headers: list[Header]) -> None:
        self.response_started = True
        self._status = status
        self._headers = tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in headers)

    async def send_data(self, data: bytes) -> None:
        self._size += len(data)
        if self._limit is not None and self._size > self._limit:
            self._failure = ("too_large", f"response larger than {self._limit} bytes")
            self._chunks.clear()
            self.scope.cancel()
            await trio.lowlevel.checkpoint()  # raises Cancelled: the exchange stops here
            return
        self._chunks.append(data)

    def end_response(self, trailers: list[Header]) -> None:
        self._ended = True

    async def flush(self) -> None:
        pass

    def abort(self) -> None:
        if self._failure is None:
            self._failure = ("failed", "the internal endpoint's answer broke off")

    def close_connection(self) -> None:
        if self._failure is None:
            self._failure = ("refused", "the internal endpoint refused the connection")

    async def relay_upgraded(
        self, upstream: Transport, upstream_leftover: bytes, meter: object
    ) -> None:
        pass  # a Fetch never asks for an upgrade

    def result(self, *, timed_out: bool) -> FetchResult:
        if self._failure is not None:
            kind, message = self._failure
            return FetchResult(0, error=message, failure=kind)
        if timed_out:
            return FetchResult(
                0, error="the internal endpoint did not answer in time", failure="timeout"
            )
        if not self._ended:
            return FetchResult(0, error="the internal endpoint gave no answer", failure="failed")
        return FetchResult(self._status, self._headers, b"".join(self._chunks))


__all__ = ["FetchDownstream", "is_internal", "refused", "request_head"]
