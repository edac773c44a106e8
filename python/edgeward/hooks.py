"""The seam between the data plane (`edgeward.proxy`) and whatever decides
what happens to traffic (`edgeward.policy`).

Everything here is plain data and protocols: no sockets, no trio, no HTTP
codec. The proxy builds these objects from the wire and drives the hooks; the
policy engine implements the hooks without knowing how bytes move.

A hook that needs no I/O returns its outcome. One that needs I/O in the
middle of a decision (read the request body to verify a signature, fetch a
JWKS) returns a generator instead: it *yields* an `Effect`, the driver
performs it and sends the result back, and the generator finally *returns*
the outcome. Most exchanges need no I/O, and then no generator is made::

    outcome = exchange.on_http_request(head)
    if needs_io(outcome):
        gen = outcome
        try:
            effect = gen.send(None)
            while True:
                effect = gen.send(await perform(effect))
        except StopIteration as stop:
            outcome = stop.value
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from types import GeneratorType
from typing import Any, Protocol, TypeVar, Union, runtime_checkable

from typing_extensions import TypeIs

T = TypeVar("T")

Header = tuple[bytes, bytes]
"""One header: lower-case name, value, both as on the wire."""


# --- what the proxy knows ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DistinguishedName:
    """A certificate's subject or issuer: the RFC 4514 text and its parts
    (`conn.tls.client.subject.common_name`, `.organization`...)."""

    text: str = ""  # e.g. "CN=alice,O=Example"
    common_name: str = ""
    country: tuple[str, ...] = ()
    locality: tuple[str, ...] = ()
    organization: tuple[str, ...] = ()
    organizational_unit: tuple[str, ...] = ()
    postal_code: tuple[str, ...] = ()
    province: tuple[str, ...] = ()
    street_address: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CertExtension:
    id: str  # dotted OID, e.g. "2.5.29.17"
    critical: bool
    value: bytes  # the extension's DER value


@dataclass(frozen=True, slots=True)
class ClientCert:
    """A certificate of the connection: the client's verified one (mTLS), or
    the one the edge presented (`TlsInfo.server_cert`)."""

    subject: str  # RFC 4514 string, e.g. "CN=alice,O=Example"
    issuer: str
    serial_number: str  # hex
    not_before: float  # unix time
    not_after: float
    san_dns: tuple[str, ...] = ()
    san_email: tuple[str, ...] = ()
    san_uri: tuple[str, ...] = ()
    san_ip: tuple[str, ...] = ()
    fingerprint_sha256: str = ""  # hex
    der: bytes = b""
    subject_name: DistinguishedName = DistinguishedName()
    issuer_name: DistinguishedName = DistinguishedName()
    signature_algorithm: str = ""  # Go's name: "SHA256-RSA", "ECDSA-SHA256", "Ed25519"
    extensions: tuple[CertExtension, ...] = ()
    pem: str = ""


Certificate = ClientCert
"""The same data for any certificate (the server's, the client's)."""


@dataclass(frozen=True, slots=True)
class TlsInfo:
    version: str  # "TLSv1.3"
    cipher: str  # "TLS_AES_256_GCM_SHA384"
    server_name: str | None  # SNI
    alpn: str | None  # "h2", "http/1.1"
    client_cert: ClientCert | None = None
    # The certificate the edge presented (chosen by SNI).
    server_cert: ClientCert | None = None
    session_resumed: bool = False
    # The ClientHello's TLS records as the client sent them (read before the
    # handshake, bounded): what `conn.tls.ja4_fingerprint` is computed from,
    # when a policy reads it. b"" when it could not be read whole.
    client_hello: bytes = b""


@dataclass(slots=True)
class ConnectionInfo:
    """One accepted client connection. The proxy updates `tls` after the
    handshake and the byte counters as traffic flows (the bytes of the
    application data read from and written to the client: after TLS
    decryption, before encryption)."""

    id: str
    listener: str
    client_ip: str  # layer-4 source address, never taken from headers
    client_port: int
    server_ip: str
    server_port: int
    started_at: float  # unix time
    tls: TlsInfo | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    # What a policy keeps for the connection's lifetime, by policy (results
    # of its on_tcp_connect actions); the proxy only drops a policy's entry
    # when a reload replaced that policy on this connection.
    policy_state: dict[object, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """The endpoint a request was routed to, as `endpoint.*` shows it."""

    name: str
    url: str  # public URL, e.g. "https://app.example.com"
    host: str
    port: int
    scheme: str
    id: str
    upstream: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class RequestHead:
    """A request as the client sent it, minus hop-by-hop headers, before the
    proxy adds forwarding headers. Hooks may replace fields."""

    method: bytes
    target: bytes  # origin-form: path and query as received
    authority: bytes  # Host / :authority as received
    scheme: bytes  # b"http" or b"https", as the client reached the edge
    headers: list[Header]
    http_version: bytes  # b"1.0", b"1.1" or b"2"


@dataclass(slots=True)
class ResponseHead:
    status: int
    headers: list[Header]


# --- effects a hook may ask the driver to perform ---------------------------------


@dataclass(frozen=True, slots=True)
class ReadBody:
    """Buffer the whole request body, at most `limit` bytes. The driver sends
    back the body as `bytes`, or `None` when it is larger than `limit` (the
    hook must then answer locally; the body cannot be forwarded)."""

    limit: int


class AddressCheck(Protocol):
    """Whether the edge may connect to an address (`Fetch.address_allowed`)."""

    def __call__(self, address: str, /) -> bool: ...


@dataclass(frozen=True, slots=True)
class Fetch:
    """An HTTP request made by the edge itself (JWKS, OIDC discovery, the
    http-request action). The driver sends back a `FetchResult`, never
    raises into the hook. Redirects are not followed (the hook decides).
    A URL whose host ends in `.internal` names an internal endpoint: the
    exchange's driver serves it itself (that endpoint's policy, then its
    upstream or agent), never over DNS."""

    url: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    timeout_s: float = 5.0
    max_bytes: int | None = None  # a larger response body fails ("too_large")
    # Asked about the address the URL's host resolved to, before connecting:
    # False refuses it ("refused"), so DNS cannot point the edge elsewhere.
    address_allowed: AddressCheck | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: int  # 0 when no HTTP response was received
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    error: str | None = None  # why the fetch failed, when status == 0
    # The kind of failure: "timeout", "too_large", "refused" (address_allowed
    # said no), "internal" (no such internal endpoint is online), "loop" (an
    # internal endpoint passed through twice, or too many), else "failed"
    # (DNS, connect, TLS, protocol); None on success.
    failure: str | None = None
    resolved_ip: str = ""  # the address connected to


@dataclass(frozen=True, slots=True)
class Await:
    """Await `call()` in the driver's event loop and send back what it
    returns (an exception it raises is sent back as the value). For a
    hook's own asynchronous client (the Redis session store of
    `edgeward.identity`): the hook stays sans-IO, the I/O runs in the
    driver's loop."""

    call: Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Offload:
    """Run `call()` in a worker thread and send back what it returns (an
    exception it raises is sent back as the value): CPU-bound work that
    would hold the event loop for milliseconds (the OWASP CRS engine, whose
    foreign calls release the GIL)."""

    call: Callable[[], object]


@dataclass(frozen=True, slots=True)
class ReadResponseBody:
    """The first `limit` bytes of the upstream's response body (all of it
    when shorter), read before the response head is sent on; response
    phase only. The driver sends back `(prefix, complete)`; the bytes are
    still forwarded. Edge-made responses send back their own body."""

    limit: int


@dataclass(frozen=True, slots=True)
class FindInternal:
    """May this exchange go on to the internal endpoint `url`
    (`forward-internal`)? The driver looks it up (an online endpoint whose
    host ends in `.internal`), checks the hop limit and loops, and sends
    back None when it may, else an `InternalError`."""

    url: str


@dataclass(frozen=True, slots=True)
class InternalError:
    """Why an exchange cannot go on to an internal endpoint: the answer's
    status and `edgeward-error` code, and a message (no secret in it)."""

    status: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class TerminateTls:
    """Terminate the client's TLS here, now (`terminate-tls` in
    `on_tcp_connect` of a tls endpoint, whose bytes the edge otherwise
    passes through). Versions are "1.2" or "1.3"; PEM text as the policy
    gave it (checked by the policy); no certificate: the listener's, chosen
    by SNI. `client_cas` non-empty asks for a client certificate, under
    `client_verify`: "require-and-verify", "require-any" (any certificate,
    not verified) or "request" (asked for, neither required nor verified).
    The driver sends back a `TlsTerminated`; once TLS is terminated the
    connection's bytes go on decrypted."""

    min_version: str = "1.2"
    max_version: str = "1.3"
    certificate: str | None = None  # PEM chain, leaf first
    private_key: str | None = None  # PEM
    client_cas: tuple[str, ...] = ()  # PEM bundles
    client_verify: str = "require-and-verify"


@dataclass(frozen=True, slots=True)
class TlsTerminated:
    """The answer to `TerminateTls`. `info` is the handshake's (also set as
    `ConnectionInfo.tls`), None when it failed (`error` says why; the
    connection is closed). `by_listener`: the listener had already
    terminated TLS with its own settings (an https endpoint), so nothing
    was done; the policy checks that they satisfy it."""

    info: TlsInfo | None
    error: str = ""
    by_listener: bool = False


Effect = ReadBody | Fetch | Await | Offload | ReadResponseBody | FindInternal | TerminateTls
EffectResult = bytes | None | FetchResult | InternalError | TlsTerminated | object


# --- outcomes ---------------------------------------------------------------------
#
# What is made for every exchange (heads, outcomes, the summary) is a plain
# slotted dataclass, not a frozen one: a frozen dataclass sets each field
# through object.__setattr__, which costs about what evaluating a rule does.


@dataclass(slots=True)
class LocalResponse:
    """Answer the client from the edge. `error_code` becomes the
    `edgeward-error` header."""

    status: int
    headers: list[Header] = field(default_factory=list)
    body: bytes = b""
    error_code: str | None = None


@dataclass(slots=True)
class Forward:
    """Send the (possibly modified) request upstream. `body` is the buffered
    body when a hook read it (forwarded byte for byte); `None` means the
    proxy streams the body from the client as usual. With `body_filter`
    (request-body-find-replace) the body goes through it on the way, as it
    streams (the proxy then frames it: chunked, or the new length of a
    buffered body)."""

    head: RequestHead
    body: bytes | None = None
    body_filter: BodyFilter | None = None


@dataclass(slots=True)
class ForwardInternal:
    """Send the (possibly modified) request to the internal endpoint `url`
    instead of this endpoint's upstream (`forward-internal`, found with
    `FindInternal` first). The driver routes it there and runs that
    endpoint's policy inside this one: its request phase now, its response
    phase before this one's; then its upstream (or agent) answers. Host
    stays the host the client asked for."""

    url: str
    head: RequestHead
    body: bytes | None = None
    body_filter: BodyFilter | None = None


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """Close the client connection without an answer. From the request
    phase the whole connection closes, HTTP/2 included (close-connection);
    from the response phase an HTTP/2 stream is reset."""


class BodyFilter(Protocol):
    """Transforms a body as it streams (compress-response, the find-replace
    actions, the on_event_stream_message phase): `feed` each chunk, then
    `finish` once; what they return, joined, is the new body."""

    def feed(self, data: bytes) -> bytes: ...
    def finish(self) -> bytes: ...


@dataclass(slots=True)
class PassResponse:
    """Send the (possibly modified) response head on, filtering the body
    through `body_filter` when set (the proxy then frames the body itself)."""

    head: ResponseHead
    body_filter: BodyFilter | None = None


@dataclass(slots=True)
class ExchangeSummary:
    """What happened, once the last byte of the response is sent."""

    status: int
    bytes_in: int
    bytes_out: int
    duration_s: float
    upstream: str | None
    error_code: str | None


RequestOutcome = Forward | LocalResponse | CloseConnection | ForwardInternal
ResponseOutcome = PassResponse | LocalResponse | CloseConnection

Hooked = Union[T, Generator[Effect, EffectResult, T]]  # noqa: UP007 (a generic alias)
"""What a hook returns: its outcome, or a generator that yields effects
and returns the outcome."""


def needs_io(hooked: Hooked[T]) -> TypeIs[Generator[Effect, EffectResult, T]]:
    """Whether a hook returned a generator to drive rather than its outcome.
    Hooks make theirs with generator functions, so the exact type test
    does: several times cheaper than an ABC check, on every request's path."""
    return type(hooked) is GeneratorType


# --- the hooks ----------------------------------------------------------------------


class ExchangeHooks(Protocol):
    """Decisions for one request/response exchange.

    The proxy calls `on_http_request` once, before forwarding; then
    `on_http_response` once for the response the client will get, including
    responses the edge made itself (a `LocalResponse` from the request phase,
    a 502/504); then `on_complete`."""

    def on_http_request(self, head: RequestHead) -> Hooked[RequestOutcome]: ...

    def on_http_response(self, head: ResponseHead) -> Hooked[ResponseOutcome]: ...

    def on_complete(self, summary: ExchangeSummary) -> None: ...


class TraceStep(Protocol):
    """What happened to one rule or action of an exchange: its phase
    (`on_http_request`...), the rule's name, the action's type (None: the
    rule's expressions) and the outcome ("matched", "not matched", "ran",
    "answered 403 (deny: ...)", "error: ...")."""

    @property
    def phase(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def action(self) -> str | None: ...
    @property
    def outcome(self) -> str: ...


@runtime_checkable
class Traced(Protocol):
    """`ExchangeHooks` that record what their rules did (`TraceStep`s) in
    `trace` when it is a list, as `edgeward policy test` and the traffic
    inspector ask; None (the usual case) records nothing."""

    trace: list[Any] | None


class PolicyHooks(Protocol):
    """The compiled policy of one endpoint (or one listener)."""

    def on_tcp_connect(self, conn: ConnectionInfo, endpoint: EndpointInfo | None = None) -> bool:
        """Called once per connection and policy before any byte of a request
        is forwarded (see docs/proxy.md for when). `endpoint` is the
        endpoint (for a listener's policy: the listener) when the driver
        knows it, for `endpoint.*`. False closes the connection.

        The edge cannot terminate TLS from here: a `terminate-tls` is
        checked against the TLS the listener already negotiated
        (`conn.tls`), and closes the connection when there is none or it
        does not satisfy the action (fail closed)."""
        ...

    def on_tls_connect(self, conn: ConnectionInfo, endpoint: EndpointInfo) -> Hooked[bool]:
        """`on_tcp_connect` for a connection whose TLS the edge has not
        touched (a tls endpoint's, before its bytes pass through): the
        policy may yield `TerminateTls`, and the driver then terminates TLS
        and passes the decrypted bytes on. A generator only when the phase
        can yield."""
        ...

    def begin(
        self, conn: ConnectionInfo, endpoint: EndpointInfo, head: RequestHead, request_id: str
    ) -> ExchangeHooks:
        """Start an exchange. Cheap: no rule runs until `on_http_request`."""
        ...
