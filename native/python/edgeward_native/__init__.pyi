"""Typed contract of edgeward-native.

The pure-Python reference twins in `edgeward` (`edgeward.ipnet.reference`,
`edgeward.webhooks.reference`, `edgeward.expr`) implement exactly this API;
`edgeward.native` exposes whichever backend is active.
"""

import os
from collections.abc import Callable, Iterable, Mapping
from types import GenericAlias
from typing import Any, Generic, Self, TypeVar, final

from typing_extensions import disjoint_base

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "PROVIDERS",
    "CidrError",
    "Env",
    "EvalError",
    "GeoDb",
    "GeoDbError",
    "H2SendError",
    "H2Server",
    "IpPolicy",
    "IpTable",
    "NativeError",
    "PhaseRunner",
    "RateLimitStore",
    "PolicyExprError",
    "Program",
    "Template",
    "UInt",
    "__version__",
    "compile",
    "explain_webhook",
    "interpolate",
    "ja4_fingerprint",
    "verify_webhook",
]

__version__: str

class NativeError(RuntimeError):
    """A bug in the native module: a Rust panic, caught at the boundary of
    the call that hit it and raised as this ordinary ``Exception`` (never
    ``pyo3_runtime.PanicException``, a ``BaseException``). The message names
    the panic and its source location. The module stays usable. The
    pure-Python twins never raise it."""

# --------------------------------------------------------------------------
# IP prefix matching
# --------------------------------------------------------------------------

_V = TypeVar("_V")

class CidrError(ValueError):
    """An entry of a CIDR list is not a valid prefix: bad syntax, or host
    bits set (``10.0.0.1/8``; the message suggests ``10.0.0.0/8``)."""

    field: str
    """The list: ``"allow"``, ``"deny"`` or ``"pairs"``."""
    index: int
    """The entry's position in that list."""
    entry: str
    """The entry as given."""

@final
class IpPolicy:
    """Allow/deny CIDR lists. An address is allowed only if it matches at
    least one allow prefix and no deny prefix (deny wins whatever the prefix
    lengths; no allow prefix means nothing is allowed). Host addresses
    without a length are /32 or /128; IPv4-mapped IPv6 addresses
    (``::ffff:a.b.c.d``) match IPv4 rules.

    Raises `CidrError` (a ``ValueError``) naming the bad entry and its
    index (``"deny[3]: '10.0.0.0/33' is not a valid CIDR"``) for a
    malformed CIDR or one with host bits set, ``TypeError`` for an entry
    that is not a ``str``. See docs/ipnet.md for IPv4-mapped prefixes."""

    def __new__(cls, allow: Iterable[str] = (), deny: Iterable[str] = ()) -> Self: ...
    def decide(self, ip: str) -> bool:
        """True = allowed. ``ValueError`` if `ip` is not an IP address."""
    def decide_many(self, ips: Iterable[str]) -> list[bool]:
        """`decide` for each address; a malformed one raises ``ValueError``
        naming its index (``"ips[5]: '1.2.3' is not a valid IP address"``)."""

@final
class IpTable(Generic[_V]):
    """Longest-prefix-match table from CIDR prefixes to Python values (IP
    categories, geo tables). A prefix given twice keeps the last value.
    Bad prefixes raise `CidrError` with ``field == "pairs"``."""

    def __new__(cls, pairs: Iterable[tuple[str, _V]]) -> Self: ...
    def __class_getitem__(cls, key: Any) -> GenericAlias: ...
    def lookup(self, ip: str) -> _V | None:
        """The value of the longest prefix containing `ip`, or None.
        ``ValueError`` if `ip` is not an IP address."""
    def lookup_many(self, ips: Iterable[str]) -> list[_V | None]:
        """`lookup` for each address (errors as `IpPolicy.decide_many`)."""
    def __len__(self) -> int:
        """Number of distinct prefixes."""

# --------------------------------------------------------------------------
# IP intelligence: MaxMind DB files
# --------------------------------------------------------------------------

class GeoDbError(ValueError):
    """A MaxMind DB file that cannot be opened or read (the message names
    the file and the reader's reason; the twins' reasons differ)."""

@final
class GeoDb:
    """A MaxMind DB (`.mmdb`) file of the GeoIP2 / GeoLite2 schema (City,
    Country, ASN, or one holding both kinds of field), read into memory.
    Records are mapped to the fields Traffic Policy shows (docs/policy.md,
    IP intelligence): every field present, empty when the record lacks it."""

    def __new__(cls, path: str | os.PathLike[str]) -> Self:
        """Raises `GeoDbError` (also for a missing file)."""
    @property
    def database_type(self) -> str:
        """The metadata's `database_type`, e.g. ``GeoLite2-City``."""
    def lookup(self, ip: str) -> dict[str, Any] | None:
        """``{"location": {...}, "registered_location": {...}, "as": {"number":
        int, "organization": str}}`` for `ip`, or None when the database has
        no record for it. Each location has the string fields city,
        continent, country, country_code, latitude, longitude, metro_code,
        postal_code, radius, subdivision, timezone and the bool is_eu.
        An IPv4-mapped IPv6 address is its IPv4 address. ``ValueError`` if
        `ip` is not an address, `GeoDbError` for a record that does not
        decode."""

# --------------------------------------------------------------------------
# TLS: JA4
# --------------------------------------------------------------------------

def ja4_fingerprint(records: bytes) -> str | None:
    """The JA4 fingerprint (FoxIO's specification) of the ClientHello at the
    start of `records` (TLS records as the client sent them, the hello
    possibly split over several), or None when they hold no complete,
    well-formed ClientHello."""

# --------------------------------------------------------------------------
# Webhook verification
# --------------------------------------------------------------------------

PROVIDERS: frozenset[str]
"""The ids the verifier knows (docs/webhooks.md). Amazon SNS (`sns`) is not
one: its X.509 signatures are verified by `edgeward.webhooks.sns`."""

DEFAULT_TOLERANCE_S: Mapping[str, float]
"""Per provider, the timestamp tolerance its documentation gives, else 180 s
(also for providers that sign no timestamp, where it is unused)."""

def verify_webhook(
    provider: str,
    secret: str | bytes,
    headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
    body: bytes,
    *,
    url: str | None = None,
    now: float | None = None,
    tolerance_s: float = 300.0,
    options: Mapping[str, str] | None = None,
    method: str = "POST",
) -> bool:
    """True when `body` carries a valid signature of `provider` made with
    `secret`. Header names are case-insensitive. A missing or malformed
    signature header, a stale timestamp (older or newer than `tolerance_s`
    relative to `now`, default the current time) returns False. `url` is the
    full request URL for providers that sign it (twilio, square, hubspot,
    plivo, mailchimp; contentful signs its path and query).
    `options` configures the `generic` provider (algorithm, header,
    encoding, prefix). Unknown provider: ``ValueError``.

    Extensions of the original contract: header names and values may be
    ``bytes`` as on the wire (read as ISO-8859-1); a header the scheme reads
    that appears more than once fails the check; `method` is the request
    method (HubSpot signs it); `options` also takes ``header`` for `okta`;
    ``ValueError`` too for an empty or unusable secret (a SendGrid key that
    is not base64 DER P-256, a Svix secret that is not base64, a vmware
    secret without ``::``), an invalid option, and a missing `url` for the
    providers that sign it."""

def explain_webhook(
    provider: str,
    secret: str | bytes,
    headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
    body: bytes,
    *,
    url: str | None = None,
    now: float | None = None,
    tolerance_s: float = 300.0,
    options: Mapping[str, str] | None = None,
    method: str = "POST",
) -> tuple[bool, str]:
    """The verdict of `verify_webhook` and a short reason (``"ok"``,
    ``"missing header x-hub-signature-256"``, ``"stale timestamp"``, ...).
    The reason never contains the secret."""

# --------------------------------------------------------------------------
# CEL
# --------------------------------------------------------------------------

class UInt(int):
    """A CEL ``uint``."""

class PolicyExprError(ValueError):
    """A parse or check error, located in the source (1-based)."""

    message: str
    line: int
    column: int
    source: str
    def __init__(self, message: str, line: int, column: int, source: str) -> None: ...

class EvalError(Exception):
    """A CEL runtime error value reaching the caller. `kind` is one of
    ``no_such_key``, ``no_such_field``, ``no_such_overload``,
    ``division_by_zero``, ``modulus_by_zero``, ``overflow``, ``range``,
    ``invalid_argument``, ``conversion``, ``regex``, ``limit``,
    ``unbound``."""

    kind: str
    message: str
    def __init__(self, kind: str, message: str) -> None: ...

@final
class Env:
    """Declared variables and resource limits for compilation.

    `variables` maps each top-level name to a type: a type name string
    (``"int"``, ``"uint"``, ``"double"``, ``"bool"``, ``"string"``,
    ``"bytes"``, ``"null"``, ``"timestamp"``, ``"duration"``, ``"dyn"``,
    ``"list(T)"``, ``"map(K, V)"``) or a dict of field name -> type for an
    object with fixed fields (selecting an unknown field is a compile
    error). ``variables=None`` declares nothing and accepts any identifier
    as ``dyn``.

    `secrets` (vault -> name -> value) is the table ``secrets.get(vault,
    name)`` reads in the programs compiled against this Env: a lookup with
    constant arguments is resolved (an unknown one is a compile error), one
    computed at run time raises ``no_such_key`` when absent. ``None``: no
    table, every lookup is ``unbound`` at run time. Values are never shown."""

    def __new__(
        cls,
        variables: Mapping[str, Any] | None = None,
        *,
        secrets: Mapping[str, Mapping[str, str]] | None = None,
        max_source_length: int = 4096,
        max_depth: int = 64,
        max_iterations: int = 10_000,
    ) -> Self: ...

@final
class Program:
    source: str
    references: frozenset[str]
    """Variable paths the expression reads, e.g. ``{"req.url.path",
    "req.headers"}``."""
    result_type: str
    """The static type the checker gave the result, in the `Env` type
    syntax (``"bool"``, ``"string"``, ``"list(string)"``, ``"dyn"``); a
    declared object is its own value's type, or ``"map(string, dyn)"``."""
    secrets_read: frozenset[tuple[str | None, str | None]]
    """``(vault, name)`` of each ``secrets.get``; None for an argument
    computed at run time."""
    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        """Evaluate against `activation` (a dict or any Mapping; nested
        Mappings are read lazily, only the keys the expression touches).
        Raises `EvalError` for a CEL runtime error."""

def compile(source: str, *, env: Env | None = None) -> Program:
    """Parse and check `source`. Raises `PolicyExprError`."""

@final
class Template:
    source: str
    references: frozenset[str]
    secrets_read: frozenset[tuple[str | None, str | None]]
    is_constant: bool
    def render(self, activation: Mapping[str, Any]) -> str:
        """Each ``${expr}`` replaced by its value as text (CEL ``string()``
        conversion). Raises `EvalError`."""

def interpolate(template: str, *, env: Env | None = None) -> Template:
    """Compile the ``${...}`` expressions of `template`. Raises
    `PolicyExprError` with the line/column inside `template`."""

# --- HTTP/2 server connection --------------------------------------------------

class H2SendError(ValueError):
    """A send the stream's state does not allow: on a closed stream, past the
    flow-control window, a frame larger than the client's maximum."""

@disjoint_base
class H2Server:
    """One HTTP/2 server connection, sans-IO: the twin of
    `edgeward.http2.connection.H2Server` (on h2). `limits` has the fields of
    `edgeward.http2.H2Limits`; `scheme` is the connection's; `events` are the
    six event classes (Request, Body, EndBody, StreamReset, WindowOpened,
    ConnectionEnded) whose instances `receive_data` returns. Subclassable."""

    def __new__(cls, limits: Any, scheme: bytes, events: tuple[type, ...]) -> Self: ...
    limits: Any
    @property
    def scheme(self) -> bytes: ...
    @property
    def ended(self) -> bool: ...
    def initiate(self) -> None: ...
    def receive_data(self, data: bytes, now: float) -> list[Any]: ...
    def data_to_send(self) -> bytes: ...
    def all_sent(self) -> None: ...
    def goaway(self, error_code: int = 0) -> None: ...
    def send_headers(
        self,
        stream_id: int,
        status: int,
        headers: Iterable[tuple[bytes, bytes]],
        end_stream: bool = False,
    ) -> None: ...
    def send_window(self, stream_id: int) -> int: ...
    def send_data(self, stream_id: int, data: bytes) -> None: ...
    def end_stream(
        self, stream_id: int, trailers: Iterable[tuple[bytes, bytes]], data: bytes = ...
    ) -> None: ...
    def finish_response(
        self,
        stream_id: int,
        head: tuple[int, Iterable[tuple[bytes, bytes]]] | None,
        data: bytes,
        trailers: Iterable[tuple[bytes, bytes]],
    ) -> bool: ...
    def consumed(self, stream_id: int, flow_length: int) -> None: ...
    def reset(self, stream_id: int, error_code: int = ...) -> None: ...

# --- policy phases ----------------------------------------------------------------

@final
class PhaseRunner:
    """One phase of a compiled Traffic Policy, run in one call (see
    docs/policy.md, "The native phase runner"). `rules` are, in order,
    ``(condition, chain, chain_end, steps)``: the rule's `Program` (None:
    always), the `Program` of the run of traffic-only rules it starts and
    the index after that run (or None, 0), and one step per action:
    ``("add-headers", [(name, bytes | Template)], sets_host)``,
    ``("remove-headers", [name])``, ``("restrict-ips", IpPolicy, enforce)``
    ``("rate-limit", RateLimitStore, capacity, window, [Program], enforce)``
    (the bucket check, when the key values are strings and `clock` is
    given), ``("deny",)``, ``("custom-response", Template | None, [(name,
    bytes | Template)])`` (the body and header values rendered),
    ``("redirect", [str | Template], escape, rewrite | None, [(name, bytes
    | Template)])`` (the `to` URL: text and values passed through
    `escape(str)`; `rewrite(url, to)` gives ``(location, matches)``),
    ``("set-vars", [(name, value)])`` (each value ``("constant", v)``,
    ``("expression", Program)``, ``("text", Template)``, ``("items",
    [value])`` or ``("fields", [(key, value)])``, set in `vars`, which the
    rules then read), ``("url-rewrite", [str | Template], escape, rewrite |
    None, split)`` (as redirect's, on the URL forwarded so far;
    `split(url)` gives the new ``(target, authority)``, None when refused),
    ``("basic-auth", [(sha256(user), sha256(password))], enforce)`` (the
    credentials check), ``("log", value)`` (the metadata, a set-vars value,
    evaluated) or ``("python",)`` (the caller runs it). `user_agent(raw)` gives the
    fields of ``req.user_agent`` read into (else they come from `fallback`).
    `timed`: timing mode (`edgeward bench policy`), each run adds to
    counters that `timings` reads; off, no clock is read."""

    def __new__(
        cls,
        rules: Iterable[tuple[Any, ...]],
        *,
        user_agent: Callable[[str], Mapping[str, Any]] | None = None,
        timed: bool = False,
    ) -> Self: ...
    @property
    def rule_count(self) -> int: ...
    def timings(self) -> list[tuple[tuple[int, int], list[tuple[int, int]]]] | None:
        """Timing mode's counters since `reset_timings`, per rule: ``((ns,
        calls), [(ns, calls)])``, of its expressions (each test of the rule,
        of its condition or the chain it starts, is a call; of a rule
        without expressions too) and of each step (a call: a step the
        runner performed; the time it spent on one it left to the caller
        counts, not the call). None when not timed."""
    def reset_timings(self) -> None:
        """Zero timing mode's counters (nothing when not timed)."""
    def run(
        self,
        head: Any,
        conn: Any,
        fallback: Callable[[str], Any],
        response: Any = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> tuple[
        int,
        int,
        list[tuple[bytes, bytes]] | None,
        bytes | None,
        bytes | None,
        Any,
        Any,
        list[tuple[int, int, Any]] | None,
    ]:
        """Run the rules on `head` (a `RequestHead`: `req.*`) and `conn` (a
        `ConnectionInfo`: `conn.*`), and `response` (a `ResponseHead`:
        `res.*`, the response phase). A variable not built natively is
        read from `fallback(root)` (a Mapping; KeyError: unbound), called
        at most once per root; `clock()` is the policy's time. Returns
        ``(rule, step, headers, authority, target, answer, vars, logged)``: where
        the caller resumes the phase (``rule == rule_count``: done;
        ``step == -1``: test the rule's expressions), the edited header
        list of the forwarded request (or of the response), the new
        authority and target, each None when unchanged, and, when the
        runner performed the step it
        stopped at and that step ends the phase, its answer (a refused
        rate-limit: the Retry-After seconds, a float; deny: ``()``;
        custom-response: ``(body, [(name, value)])``; redirect:
        ``(location, [(name, value)])``; basic-auth: ``(presented,
        username bytes | None)``), else None, the phase's `vars` (a dict:
        set by set-vars, or read; None: neither), and the ``(rule, step,
        metadata)`` of each log step run, in order (None: none). Raises
        what `fallback`, `clock` or a Mapping they return raises."""

@final
class RateLimitStore:
    """The buckets of one `rate-limit` action (the sliding-window counter
    of `edgeward.policy.ratelimit`, same arithmetic and eviction), shared
    by the Python action and `PhaseRunner`. Keys are bucket key texts
    (hashed inside); at most `max_buckets`, least recently used out."""

    def __new__(cls, *, max_buckets: int = 100_000) -> Self: ...
    @property
    def max_buckets(self) -> int: ...
    def hit(self, key: str, *, capacity: int, window: float, now: float) -> tuple[bool, float]:
        """Count a request to bucket `key` if it fits: ``(True, 0.0)``,
        else ``(False, seconds until one more would be admitted)``."""
    def __len__(self) -> int: ...
