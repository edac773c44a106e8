"""Header rewriting between client and upstream: hop-by-hop removal,
forwarding headers, Host handling. Plain functions on header lists."""

from __future__ import annotations

from edgeward.hooks import Header

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


def strip_hop_by_hop(headers: list[Header]) -> list[Header]:
    """Drop RFC 9110 §7.6.1 hop-by-hop headers and those named in `Connection`."""
    named: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            named.update(t.strip().lower() for t in value.split(b","))
    if not named:
        return [h for h in headers if h[0] not in HOP_BY_HOP]
    return [h for h in headers if h[0] not in HOP_BY_HOP and h[0] not in named]


def connection_tokens(headers: list[Header]) -> set[bytes]:
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    return tokens


_FORWARDED_NAMES = frozenset(
    {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded"}
)


def add_forwarding(
    headers: list[Header], client_ip: str, scheme: bytes, host: bytes, *, trusted: bool
) -> list[Header]:
    """Set X-Forwarded-For/-Proto/-Host and Forwarded (RFC 7239). From a
    trusted peer the incoming values are kept and ours appended; from anyone
    else they are replaced, so a client cannot forge its address."""
    ip = client_ip.encode()
    node = b'"[' + ip + b']"' if b":" in ip else ip
    forwarded = b"for=" + node + b";host=" + _quoted(host) + b";proto=" + scheme
    if not trusted:
        out = [h for h in headers if h[0] not in _FORWARDED_NAMES]
        out += [
            (b"x-forwarded-for", ip),
            (b"x-forwarded-proto", scheme),
            (b"x-forwarded-host", host),
            (b"forwarded", forwarded),
        ]
        return out
    xff = [v for n, v in headers if n == b"x-forwarded-for"]
    fwd = [v for n, v in headers if n == b"forwarded"]
    has_proto = any(n == b"x-forwarded-proto" for n, _ in headers)
    has_host = any(n == b"x-forwarded-host" for n, _ in headers)
    out = [h for h in headers if h[0] not in (b"x-forwarded-for", b"forwarded")]
    out.append((b"x-forwarded-for", b", ".join([*xff, ip])))
    out.append((b"forwarded", b", ".join([*fwd, forwarded])))
    if not has_proto:
        out.append((b"x-forwarded-proto", scheme))
    if not has_host:
        out.append((b"x-forwarded-host", host))
    return out


def _quoted(value: bytes) -> bytes:
    if all(c in _TOKEN for c in value):
        return value
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
