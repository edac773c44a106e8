"""Reaching an upstream: the TCP (or unix) connection and the TLS
handshake with the client context its config asks for, shared by the
HTTP/1.1 pool (`upstream.py`) and the HTTP/2 one (`upstream_h2.py`)."""

from __future__ import annotations

import ipaddress
import socket
import ssl

import trio

from edgeward.config import Upstream
from edgeward.proxy import errors
from edgeward.proxy.transport import connect, tls_handshake


async def dial(
    up: Upstream, ssl_context: ssl.SSLContext | None, connect_timeout: float
) -> socket.socket:
    """A connected (and, with `ssl_context`, TLS-handshaken) socket to `up`,
    TCP_NODELAY on; raises `errors.UpstreamFailure` (refused, timed out, TLS).
    The one way both pools (HTTP/1.1 and HTTP/2) reach an upstream."""
    try:
        if up.scheme == "unix":
            sock = await connect(socket.AF_UNIX, up.host, connect_timeout)
        else:
            family, address = await resolve(up.host, up.port)
            sock = await connect(family, address, connect_timeout)
    except trio.TooSlowError:
        raise errors.UpstreamFailure(errors.UPSTREAM_CONNECT_TIMEOUT, up.url) from None
    except OSError as exc:
        raise errors.UpstreamFailure(
            errors.UPSTREAM_REFUSED, f"{up.url}: {exc.strerror or exc}"
        ) from None
    if ssl_context is not None:
        tls = ssl_context.wrap_socket(
            sock, server_hostname=up.tls_server_name or up.host, do_handshake_on_connect=False
        )
        try:
            with trio.fail_after(connect_timeout):
                await tls_handshake(tls)
        except trio.TooSlowError:
            tls.close()
            raise errors.UpstreamFailure(errors.UPSTREAM_CONNECT_TIMEOUT, up.url) from None
        except (OSError, ssl.SSLError) as exc:
            tls.close()
            raise errors.UpstreamFailure(errors.UPSTREAM_TLS, f"{up.url}: {exc}") from None
        sock = tls
    return sock


async def resolve(host: str, port: int) -> tuple[int, tuple[str, int]]:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), (host, port)
    infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"cannot resolve {host}")
    family, _, _, _, address = infos[0]
    return family, address[:2]  # type: ignore[return-value]


def client_context(up: Upstream) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(up.tls_ca) if up.tls_ca else None)
    if not up.tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"] if up.protocol == "http2" else ["http/1.1"])
    return ctx
