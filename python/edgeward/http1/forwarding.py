"""Header rewriting a proxy does on every request: hop-by-hop removal and the
forwarding headers. Plain functions on header lists (lower-case names), run
once per request on the hot path.

Written in Cython's pure-Python mode: this file is the pure-Python twin and
`_forwarding.pyx` compiles the very same source.
"""

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # the shim is typed; Cython's own `cython` module is not
    from edgeward.http1 import _cython_shim as cython
else:
    try:
        import cython
    except ModuleNotFoundError:  # pragma: no cover - Cython is a build-time tool
        from edgeward.http1 import _cython_shim as cython

Header = tuple[bytes, bytes]

HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"http2-settings",
    }
)
"""RFC 9110 §7.6.1 connection-specific fields (and the non-standard
Proxy-Connection, Keep-Alive), and HTTP2-Settings: it belongs to an h2c
upgrade (RFC 7540 §3.2.1), which the edge never forwards."""

END_TO_END: Final = frozenset({b"host", b"content-length"})
"""Never removed because `Connection` names them: a client could otherwise
make the proxy drop the routing or framing of its own request."""

FORWARDED_NAMES: Final = frozenset(
    {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded"}
)

_TOKEN: Final = frozenset(
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def connection_tokens(headers: list[Header]) -> set[bytes]:
    """The lower-cased options of every `Connection` field."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            for item in value.lower().split(b","):
                token = item.strip(b" \t")
                if token:
                    tokens.add(token)
    return tokens


def strip_hop_by_hop(headers: list[Header]) -> list[Header]:
    """`headers` without the hop-by-hop fields and those `Connection` names
    (RFC 9110 §7.6.1), except Host and Content-Length. A new list; the common
    case (no `Connection` options beyond the standard ones) takes one pass."""
    named = connection_tokens(headers)
    named -= HOP_BY_HOP
    named -= END_TO_END
    if not named:
        return [header for header in headers if header[0] not in HOP_BY_HOP]
    return [header for header in headers if header[0] not in HOP_BY_HOP and header[0] not in named]


def add_forwarding(
    headers: list[Header], client_ip: str, scheme: bytes, host: bytes, *, trusted: bool
) -> list[Header]:
    """`headers` with X-Forwarded-For/-Proto/-Host and Forwarded (RFC 7239)
    describing the client. From a `trusted` peer (another proxy of ours) the
    incoming values are kept and ours appended to the chain; from anyone else
    they are replaced, so a client cannot forge its address. A new list."""
    ip = client_ip.encode("ascii")
    node = b'"[' + ip + b']"' if ip.find(b":") >= 0 else ip
    forwarded = b"for=" + node + b";host=" + _quoted(host) + b";proto=" + scheme
    out = [header for header in headers if header[0] not in FORWARDED_NAMES]
    if not trusted or len(out) == len(headers):
        out += [
            (b"x-forwarded-for", ip),
            (b"x-forwarded-proto", scheme),
            (b"x-forwarded-host", host),
            (b"forwarded", forwarded),
        ]
        return out
    chain_for: list[bytes] = []
    chain_forwarded: list[bytes] = []
    proto = host_seen = b""
    for name, value in headers:
        if name == b"x-forwarded-for":
            chain_for.append(value)
        elif name == b"forwarded":
            chain_forwarded.append(value)
        elif name == b"x-forwarded-proto" and not proto:
            proto = value
        elif name == b"x-forwarded-host" and not host_seen:
            host_seen = value
    chain_for.append(ip)
    chain_forwarded.append(forwarded)
    out += [
        (b"x-forwarded-for", b", ".join(chain_for)),
        (b"x-forwarded-proto", proto or scheme),
        (b"x-forwarded-host", host_seen or host),
        (b"forwarded", b", ".join(chain_forwarded)),
    ]
    return out


@cython.cfunc
def _quoted(value: bytes) -> bytes:
    """A Forwarded parameter value: a token as is, anything else quoted."""
    for byte in value:
        if byte not in _TOKEN:
            return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return value if value else b'""'


def compiled() -> bool:
    """Whether this module is the Cython-compiled build."""
    return bool(cython.compiled)
