"""The `Fetch` effect: small HTTP/1.1 requests the edge makes itself (JWKS,
OIDC discovery) for a policy. h11 on our transport: one connection per
fetch, bounded time and size, and failures as `FetchResult`, never raised."""

from __future__ import annotations

import ssl
from urllib.parse import SplitResult, urlsplit

import h11
import trio

from edgeward.hooks import Fetch, FetchResult
from edgeward.proxy.dial import resolve
from edgeward.proxy.transport import Transport, connect, tls_handshake

MAX_FETCH_BYTES = 4 * 1024 * 1024


class Fetcher:
    def __init__(self, *, max_bytes: int = MAX_FETCH_BYTES) -> None:
        self._max_bytes = max_bytes
        self._ssl = ssl.create_default_context()

    async def __call__(self, fetch: Fetch) -> FetchResult:
        try:
            with trio.fail_after(fetch.timeout_s):
                return await self._fetch(fetch)
        except trio.TooSlowError:
            return FetchResult(0, error=f"timed out after {fetch.timeout_s}s", failure="timeout")
        except (OSError, ssl.SSLError, h11.ProtocolError, ValueError) as exc:
            return FetchResult(0, error=f"{type(exc).__name__}: {exc}", failure="failed")

    async def _fetch(self, fetch: Fetch) -> FetchResult:
        url = urlsplit(fetch.url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"unsupported URL {fetch.url!r}")
        tls = url.scheme == "https"
        port = url.port or (443 if tls else 80)
        family, address = await resolve(url.hostname, port)
        if fetch.address_allowed is not None and not fetch.address_allowed(address[0]):
            error = f"{url.hostname} resolved to {address[0]}, which is not allowed"
            return FetchResult(0, error=error, failure="refused", resolved_ip=address[0])
        sock = await connect(family, address, fetch.timeout_s)
        try:
            if tls:
                sock = self._ssl.wrap_socket(
                    sock, server_hostname=url.hostname, do_handshake_on_connect=False
                )
                await tls_handshake(sock)
            transport = Transport(sock)
        except BaseException:
            sock.close()  # a failed (or cancelled) handshake must not leak the socket
            raise
        try:
            return await self._exchange(transport, fetch, _host(url), url.path or "/", url.query)
        finally:
            transport.close()

    async def _exchange(
        self, transport: Transport, fetch: Fetch, host: str, path: str, query: str
    ) -> FetchResult:
        conn = h11.Connection(h11.CLIENT)
        headers = [("host", host), ("connection", "close")]
        if not any(name.lower() == "user-agent" for name, _ in fetch.headers):
            headers.append(("user-agent", "edgeward"))
        headers += list(fetch.headers)
        limit = (
            self._max_bytes if fetch.max_bytes is None else min(fetch.max_bytes, self._max_bytes)
        )
        peer = str(transport.sock.getpeername()[0])
        if fetch.body:
            headers.append(("content-length", str(len(fetch.body))))
        target = path + ("?" + query if query else "")
        out = conn.send(h11.Request(method=fetch.method, target=target, headers=headers))
        if fetch.body:
            out += conn.send(h11.Data(data=fetch.body))
        out += conn.send(h11.EndOfMessage())
        await transport.send(out)
        status = 0
        response_headers: tuple[tuple[str, str], ...] = ()
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await transport.recv())
            elif isinstance(event, h11.Response):
                status = event.status_code
                response_headers = tuple(
                    (n.decode("latin-1"), v.decode("latin-1")) for n, v in event.headers
                )
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > limit:
                    error = f"response larger than {limit} bytes"
                    return FetchResult(0, error=error, failure="too_large", resolved_ip=peer)
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return FetchResult(status, response_headers, bytes(body), resolved_ip=peer)


def _host(url: SplitResult) -> str:
    """The Host header: the URL's host and port, never its `user:password@`
    (userinfo is not part of the authority sent, RFC 9110 §7.2)."""
    host = url.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return host if url.port is None else f"{host}:{url.port}"


__all__ = ["Fetcher"]
