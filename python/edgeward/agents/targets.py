"""What a Bind asks for, read from the messages of every SDK we accept:
our agent and the Go SDK send `Opts.URL`; the Python/Rust SDK sends the
domain in `Opts.Domain` (1.7.0) or `Opts.Hostname` (1.4.0), a TCP address
in `Opts.Addr`; `Extra.Bindings` may say "internal". Sans-IO."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from edgeward.authtokens import BindTargetError, HostBind
from edgeward.config import is_internal
from edgeward.tunnel.errors import RpcError
from edgeward.tunnel.messages import Bind, HttpOpts, TcpOpts, TlsOpts

Kind = Literal["http", "https", "tcp", "tls"]
KINDS: tuple[Kind, ...] = ("http", "https", "tcp", "tls")

# ngrok's codes for refused binds (traffic-policy-reference.md §6, gateway-error-codes.tsv)
ERR_BAD_URL = "ERR_NGROK_249"
ERR_PROTO = "ERR_NGROK_332"
ERR_ONLINE = "ERR_NGROK_334"
ERR_RESERVED = "ERR_NGROK_381"  # served by the edge config itself
ERR_NOT_AGENT_DOMAIN = "ERR_NGROK_318"
ERR_POLICY = "ERR_NGROK_9026"
ERR_INTERNAL_BINDING = "ERR_NGROK_9029"
ERR_AUTH = "ERR_NGROK_107"


@dataclass(frozen=True, slots=True)
class Target:
    """A requested endpoint: its kind and host (None: the edge picks a
    name), and for tcp the port (None: the edge picks one)."""

    kind: Kind
    host: str | None
    port: int | None = None

    @property
    def internal(self) -> bool:
        return self.host is not None and is_internal(self.host)


def requested(bind: Bind) -> Target:
    """The target of a Bind; `RpcError` when it names none we can serve."""
    proto = bind.proto.lower()
    if proto not in KINDS:
        raise RpcError(f"{bind.proto!r} is not a supported endpoint protocol", ERR_PROTO)
    opts = bind.opts
    url = getattr(opts, "url", "")
    target = _from_url(url, proto) if url else None
    if target is None:
        if isinstance(opts, TcpOpts):
            target = _tcp_address(opts.addr) if opts.addr else Target("tcp", None)
        elif isinstance(opts, HttpOpts | TlsOpts):
            host = opts.requested_domain
            target = Target(proto, _hostname(host) if host else None)
        else:  # pragma: no cover - the message layer makes one of the three
            raise RpcError("no endpoint options", ERR_BAD_URL)
    bindings = [b.lower() for b in bind.extra.bindings]
    if "internal" in bindings and not target.internal:
        raise RpcError(
            "an endpoint with the 'internal' binding needs a URL ending in '.internal'",
            ERR_INTERNAL_BINDING,
        )
    if any(b not in ("public", "internal") for b in bindings):
        raise RpcError(f"unsupported endpoint bindings {bind.extra.bindings!r}", ERR_BAD_URL)
    return target


def _from_url(url: str, proto: str) -> Target:
    try:
        parts = urlsplit(url if "://" in url else f"{proto}://{url}")
        port = parts.port
    except ValueError:
        raise RpcError(f"not a valid endpoint URL: {url!r}", ERR_BAD_URL) from None
    scheme = parts.scheme.lower()
    if scheme not in KINDS:
        raise RpcError(f"not a valid endpoint URL: {url!r} (scheme {scheme!r})", ERR_BAD_URL)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise RpcError(f"not a valid endpoint URL: {url!r} (scheme://host[:port])", ERR_BAD_URL)
    host = _hostname(parts.hostname or "") if parts.hostname else None
    if scheme == "tcp":
        return Target("tcp", host, port)
    return Target(scheme, host)  # a listener decides the port


def _tcp_address(addr: str) -> Target:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise RpcError(f"not a TCP address: {addr!r} (host:port)", ERR_BAD_URL)
    return Target("tcp", _hostname(host), int(port))


def _hostname(host: str) -> str:
    try:
        return HostBind(host).hostname
    except BindTargetError as exc:
        raise RpcError(str(exc), ERR_BAD_URL) from None
