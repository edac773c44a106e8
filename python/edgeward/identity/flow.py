"""The login flow and the session check, as a sans-IO state machine.

Hosts: the *endpoint* H (the protected app) and the *auth host* A (one per
edge, named in the edge config; its ``/oauth2/callback`` is the only
redirect URI registered at the provider). Everything a browser carries
between steps is sealed (`edgeward.identity.seal`) or a random one-time
code; the steps:

1. H, no valid session: a random *nonce* N goes into H's ``__Host-nonce``
   cookie, and the browser is sent to ``A/oauth2/start?t=<ticket>``, the
   ticket sealing (client key, H's origin, the return path, SHA-256(N),
   auth_id), valid 10 min.
2. A ``/oauth2/start``: makes `state`, the OIDC `nonce` and a PKCE S256
   verifier, seals them with the ticket into a per-attempt transaction
   cookie on A (``__Host-tx-<id>``), and redirects to the provider.
3. A ``/oauth2/callback``: the transaction cookie named by `state` must
   unseal and hold that state (constant-time); the state is then recorded
   as used (single use, even if the cookie is replayed), the code
   exchanged with the verifier, the ID token validated (OIDC), the user
   fetched, a session stored, and a *hand-off code* (random, 60 s, single
   use) stored with SHA-256(N); the browser goes to
   ``H/ngrok/handoff?code=…``.
4. H ``/ngrok/handoff``: the code is taken (get-and-delete) and H's nonce
   cookie must hash to its SHA-256(N): a hand-off URL is useless in
   another browser (login CSRF). H then sets its own ``__Host-session``
   cookie, sealing a fresh session id (no fixation: every login makes a
   new id), and redirects to the return path, which is always a path on H
   (no open redirect).

Then every request on H: the session cookie unseals to an id, the store
has the session, it belongs to this client and auth_id, and is within its
max and idle durations. Tokens are refreshed, and userinfo re-fetched,
under a per-session lock; an ended session starts a new login.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from edgeward.hooks import Effect, EffectResult, Header
from edgeward.identity.http import ProviderError, get_json, post_form
from edgeward.identity.oidc import (
    Discovery,
    DiscoveryUnavailable,
    InvalidIdToken,
    Metadata,
    token_kid,
    validate_id_token,
)
from edgeward.identity.providers import Adapter, Identity, scopes_for, token_url
from edgeward.identity.seal import Keyring, SealError, b64e, same
from edgeward.identity.store import MemoryStore, SessionStore, StoreError

Op = Generator[Effect, EffectResult, Any]

TICKET_TTL = 600.0  # a login must complete within 10 minutes
HANDOFF_TTL = 60.0
LOCK_TTL = 30.0
COOKIE_GRACE = 300
DEFAULT_MAX_SESSION = 86_400.0
CALLBACK_PATH = "/oauth2/callback"
START_PATH = "/oauth2/start"
HANDOFF_PATH = "/ngrok/handoff"
LOGIN_PATH = "/ngrok/login"
LOGOUT_PATH = "/ngrok/logout"
RESERVED_AUTHZ_PARAMS = frozenset(
    {
        "client_id",
        "redirect_uri",
        "response_type",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
    }
)
# Claims only the ID token may set (userinfo cannot change them).
_ID_TOKEN_ONLY = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nonce", "amr", "acr", "auth_time", "azp", "sid", "at_hash"}
)


class Code:
    """Error codes of the identity answers (`edgeward-error`)."""

    DISCOVERY = "ERR_EDGEWARD_2227"  # the issuer's discovery document is missing (503)
    LOGIN_REQUIRED = "ERR_EDGEWARD_3440"  # not logged in, and the request cannot be redirected
    BAD_STATE = "ERR_EDGEWARD_3441"  # callback: unknown, expired or replayed login state
    PROVIDER = "ERR_EDGEWARD_3442"  # the provider refused or failed (token, user API)
    ID_TOKEN = "ERR_EDGEWARD_3443"  # an ID token that does not validate
    HANDOFF = "ERR_EDGEWARD_3444"  # unknown, used or foreign hand-off code
    NOT_FOUND = "ERR_EDGEWARD_3445"  # no such path on the auth host
    STORE = "ERR_EDGEWARD_3446"  # the session store failed
    HTTPS = "ERR_EDGEWARD_3447"  # identity needs https


# --- data ---------------------------------------------------------------------------


@dataclass(slots=True)
class Reply:
    """An answer the edge makes itself."""

    status: int
    headers: list[Header] = field(default_factory=list)
    body: bytes = b""
    error_code: str | None = None
    reason: str = ""  # for the event log: never a secret


@dataclass(frozen=True, slots=True)
class Credentials:
    client_id: str
    client_secret: str


@dataclass(slots=True)
class Client:
    """One provider registration (an `oauth` or `openid-connect` action's
    provider, client and scopes), known to the auth host by `key`."""

    key: str
    kind: str  # "oidc" or the oauth provider's name
    credentials: Callable[[], Credentials]
    scopes: tuple[str, ...]
    authz_params: Mapping[str, str]
    discovery: Discovery | None = None
    adapter: Adapter | None = None

    @property
    def is_oidc(self) -> bool:
        return self.discovery is not None


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """An action's session settings."""

    auth_id: str = ""
    max_duration: float | None = None
    idle_duration: float | None = None
    userinfo_refresh: float | None = None
    allow_cors_preflight: bool = False
    cookie_domain: str | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """What the flow reads of a request."""

    method: str
    target: str  # path and query as received
    authority: str  # host[:port], lower-case
    scheme: str
    headers: Sequence[Header]

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> dict[str, str]:
        _, _, q = self.target.partition("?")
        return dict(parse_qsl(q, keep_blank_values=True))

    def header(self, name: bytes) -> str | None:
        for n, v in self.headers:
            if n == name:
                return v.decode("latin-1")
        return None

    def cookies(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for n, v in self.headers:
            if n != b"cookie":
                continue
            for part in v.decode("latin-1").split(";"):
                name, eq, value = part.strip().partition("=")
                if eq and name and name not in out:
                    out[name] = value.strip()
        return out

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.authority}"


@dataclass(slots=True)
class Session:
    """A checked session, as the action reports it."""

    id: str
    identity: Identity
    access_token: str
    refresh_token: str
    id_token: str
    expires_at: float | None  # the access token's
    ends_at: float  # the session's end (max duration)
    userinfo_refreshed: bool = False


@dataclass(slots=True)
class Outcome:
    """What the guard decided for a request on a protected endpoint:
    `session` set: let it through as that user; `reply` set: answer it
    (login redirect, hand-off, logout, error); neither: let it through
    unauthenticated (a real CORS preflight, or another action's special
    path)."""

    session: Session | None = None
    reply: Reply | None = None
    timed_out: bool = False
    max_duration_reached: bool = False
    error: tuple[str, str] | None = None  # (code, message) for the results


# --- the runtime ---------------------------------------------------------------------


class Runtime:
    """What the auth host and every protected endpoint of an edge share:
    keys, the store, the auth host's name and the registered clients."""

    def __init__(
        self,
        *,
        auth_host: str,
        keyring: Keyring,
        store: SessionStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.auth_host = auth_host
        self.keyring = keyring
        self.store = store
        self.clock = clock
        self.clients: dict[str, Client] = {}
        # From the edge config: http:// issuers on loopback (tests), and
        # replaced provider base URLs (name -> (web, api)).
        self.allow_insecure_loopback = False
        self.provider_bases: dict[str, tuple[str | None, str | None]] = {}
        self._discoveries: dict[tuple[str, bool], Discovery] = {}

    @classmethod
    def standalone(cls) -> Runtime:
        """For a policy compiled without an edge (`policy check`/`test`): a
        random key, memory sessions, an auth host that does not exist."""
        return cls(auth_host="auth.invalid", keyring=Keyring.generate(), store=MemoryStore())

    @property
    def callback_url(self) -> str:
        return f"https://{self.auth_host}{CALLBACK_PATH}"

    def discovery(self, issuer: str, *, allow_insecure_loopback: bool) -> Discovery:
        key = (issuer, allow_insecure_loopback)
        found = self._discoveries.get(key)
        if found is None:
            found = self._discoveries[key] = Discovery(
                issuer, allow_insecure_loopback=allow_insecure_loopback
            )
        return found

    def register(self, client: Client) -> Client:
        """The registered client with this key (the same provider, client
        and scopes used by several endpoints share one)."""
        found = self.clients.get(client.key)
        if found is not None:
            found.credentials = client.credentials  # the latest compile wins
            return found
        self.clients[client.key] = client
        return client


def client_key(*parts: object) -> str:
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return b64e(digest[:12])


def _digest(value: str) -> str:
    return b64e(hashlib.sha256(value.encode()).digest())


def _random(n: int = 32) -> str:
    return b64e(os.urandom(n))


# --- cookies -------------------------------------------------------------------------


def cookie_names(opts: SessionOptions) -> tuple[str, str]:
    """(session cookie, nonce cookie) names for an action."""
    suffix = f"-{opts.auth_id}" if opts.auth_id else ""
    if opts.cookie_domain:
        return f"__Secure-session{suffix}", f"__Secure-nonce{suffix}"
    return f"__Host-session{suffix}", f"__Host-nonce{suffix}"


def set_cookie(name: str, value: str, *, max_age: int | None, domain: str | None = None) -> Header:
    parts = [f"{name}={value}", "Path=/", "Secure", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max(0, max_age)}")
    if domain:
        parts.append(f"Domain={domain}")
    return (b"set-cookie", "; ".join(parts).encode())


def clear_cookie(name: str, domain: str | None = None) -> Header:
    return set_cookie(name, "", max_age=0, domain=domain)


def strip_cookies(headers: list[Header], names: Sequence[str]) -> None:
    """Remove the edge's own cookies from a request forwarded upstream."""
    drop = set(names)
    out: list[Header] = []
    for n, v in headers:
        if n != b"cookie":
            out.append((n, v))
            continue
        kept = [
            part.strip()
            for part in v.decode("latin-1").split(";")
            if part.strip() and part.strip().partition("=")[0] not in drop
        ]
        if kept:
            out.append((n, "; ".join(kept).encode("latin-1")))
    headers[:] = out


def safe_path(path: str | None) -> str:
    """A return path that can only lead back to the same host: an absolute
    path, never ``//host`` or ``/\\host``, no control characters."""
    if (
        not path
        or not path.startswith("/")
        or path.startswith("//")
        or "\\" in path
        or len(path) > 2048
        or any(ord(c) < 0x21 or ord(c) == 0x7F for c in path)
    ):
        return "/"
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        return "/"
    return path


def _redirect(location: str, headers: Sequence[Header] = (), reason: str = "") -> Reply:
    hdrs = [
        (b"location", location.encode()),
        (b"cache-control", b"no-store"),
        *headers,
    ]
    return Reply(302, hdrs, b"", None, reason)


def _page(
    status: int, title: str, text: str, code: str | None, headers: Sequence[Header] = ()
) -> Reply:
    body = (
        "<!doctype html><meta charset=utf-8><title>{0}</title><h1>{0}</h1><p>{1}</p>"
        "<p><small>{2}</small></p>\n".format(_html(title), _html(text), code or "").encode()
    )
    hdrs = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"cache-control", b"no-store"),
        *headers,
    ]
    return Reply(status, hdrs, body, code, text)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- step 1 and the session check: the protected endpoint --------------------------


def guard(rt: Runtime, client: Client, opts: SessionOptions, req: Request, now: float) -> Op:
    """Decide one request on a protected endpoint (an `Outcome`)."""
    path = req.path
    session_cookie, _ = cookie_names(opts)
    special = path in (LOGIN_PATH, LOGOUT_PATH, HANDOFF_PATH)
    if special and req.query.get("auth_id", opts.auth_id) != opts.auth_id:
        return Outcome()  # another action's (auth_id) special path
    if req.scheme != "https":
        if req.method in ("GET", "HEAD"):
            return Outcome(reply=_redirect(f"https://{req.authority}{req.target}"))
        return Outcome(reply=_page(403, "HTTPS required", "Log in over https.", Code.HTTPS))
    if path == HANDOFF_PATH:
        reply = yield from _handoff(rt, client, opts, req, now)
        return Outcome(reply=reply)
    if path == LOGOUT_PATH:
        reply = yield from _logout(rt, opts, req, now)
        return Outcome(reply=reply)
    if path == LOGIN_PATH:
        back = safe_path(req.query.get("redirect_path"))
        return Outcome(reply=_start_login(rt, client, opts, req, back=back, now=now, force=True))
    if opts.allow_cors_preflight and _is_preflight(req):
        return Outcome()
    cookies = req.cookies()
    outcome = Outcome()
    raw = cookies.get(session_cookie)
    if raw:
        try:
            outcome = yield from _check_session(rt, client, opts, req, raw=raw, now=now)
        except StoreError as exc:
            reply = _page(503, "Sessions unavailable", "Try again shortly.", Code.STORE)
            return Outcome(reply=reply, error=(Code.STORE, str(exc)))
        if outcome.session is not None:
            return outcome
    if req.method not in ("GET", "HEAD"):
        reply = _page(
            401, "Login required", "Log in, then send the request again.", Code.LOGIN_REQUIRED
        )
        outcome.reply = reply
        return outcome
    outcome.reply = _start_login(
        rt, client, opts, req, back=safe_path(req.target), now=now, force=False
    )
    return outcome


def _is_preflight(req: Request) -> bool:
    return (
        req.method == "OPTIONS"
        and req.header(b"origin") is not None
        and req.header(b"access-control-request-method") is not None
    )


def _start_login(
    rt: Runtime,
    client: Client,
    opts: SessionOptions,
    req: Request,
    *,
    back: str,
    now: float,
    force: bool,
) -> Reply:
    _, nonce_cookie = cookie_names(opts)
    headers: list[Header] = []
    nonce = req.cookies().get(nonce_cookie, "")
    if len(nonce) != 43:  # 32 random bytes, base64url; else make one
        nonce = _random()
        headers.append(
            set_cookie(nonce_cookie, nonce, max_age=int(TICKET_TTL), domain=opts.cookie_domain)
        )
    ticket = rt.keyring.seal(
        "ticket",
        {
            "k": client.key,
            "o": req.origin,
            "p": back,
            "n": _digest(nonce),
            "a": opts.auth_id,
            "d": opts.cookie_domain or "",
            "f": force,
            "ma": int(opts.max_duration or DEFAULT_MAX_SESSION),
            "exp": now + TICKET_TTL,
        },
    )
    location = f"https://{rt.auth_host}{START_PATH}?t={ticket}"
    return _redirect(location, headers, "login required: redirected to the auth host")


def _handoff(rt: Runtime, client: Client, opts: SessionOptions, req: Request, now: float) -> Op:
    session_cookie, nonce_cookie = cookie_names(opts)
    code = req.query.get("code", "")
    refused = _page(
        400,
        "Login link expired",
        "This login link was already used or has expired. Reload the page to log in again.",
        Code.HANDOFF,
    )
    if not code or len(code) > 64:
        return refused
    try:
        record = yield from rt.store.take("handoff:" + _digest(code), now)
    except StoreError:
        return _page(503, "Sessions unavailable", "Try again shortly.", Code.STORE)
    if record is None:
        return refused
    nonce = req.cookies().get(nonce_cookie, "")
    if (
        not nonce
        or not same(_digest(nonce), str(record.get("n", "")))
        or record.get("o") != req.origin
        or record.get("k") != client.key
        or record.get("a") != opts.auth_id
    ):
        # Someone else's login (CSRF), another endpoint's, or another action's.
        refused.status = 403
        refused.reason = "hand-off refused: it was not started by this browser for this endpoint"
        return refused
    sid = str(record["sid"])
    # The cookie outlives the session by a little, so an ended session is
    # seen (and reported: session_max_duration_reached), not just forgotten.
    max_age = int(record.get("ma") or DEFAULT_MAX_SESSION) + COOKIE_GRACE
    sealed = rt.keyring.seal(
        "session",
        {
            "s": sid,
            "k": client.key,
            "a": opts.auth_id,
            "h": opts.cookie_domain or req.authority,
            "exp": now + max_age,
        },
    )
    headers = [
        set_cookie(session_cookie, sealed, max_age=max_age, domain=opts.cookie_domain),
        clear_cookie(nonce_cookie, opts.cookie_domain),
    ]
    return _redirect(safe_path(str(record.get("p") or "/")), headers, "logged in")


def _logout(rt: Runtime, opts: SessionOptions, req: Request, now: float) -> Op:
    session_cookie, _ = cookie_names(opts)
    raw = req.cookies().get(session_cookie)
    if raw:
        try:
            sealed = rt.keyring.unseal("session", raw, now)
            yield from rt.store.delete("session:" + str(sealed.get("s", "")))
        except SealError:
            pass
        except StoreError:
            return _page(503, "Sessions unavailable", "Try again shortly.", Code.STORE)
    return _page(
        200,
        "Logged out",
        "You are logged out.",
        None,
        [clear_cookie(session_cookie, opts.cookie_domain)],
    )


def _host_matches(bound: str, authority: str) -> bool:
    host = authority.rsplit(":", 1)[0] if not authority.endswith("]") else authority
    if bound == authority:
        return True
    domain = bound.lstrip(".")
    return host == domain or host.endswith("." + domain)


def _check_session(
    rt: Runtime, client: Client, opts: SessionOptions, req: Request, *, raw: str, now: float
) -> Op:
    """The session named by the cookie, checked and kept fresh; an
    `Outcome` without a session when it cannot be used."""
    try:
        sealed = rt.keyring.unseal("session", raw, now)
    except SealError:
        return Outcome()
    if (
        sealed.get("k") != client.key
        or sealed.get("a") != opts.auth_id
        or not _host_matches(str(sealed.get("h", "")), req.authority)
    ):
        return Outcome()
    sid = str(sealed.get("s", ""))
    key = "session:" + sid
    record = yield from rt.store.get(key, now)
    if record is None or record.get("k") != client.key:
        return Outcome()
    created = float(record.get("created", 0))
    seen = float(record.get("seen", created))
    max_duration = opts.max_duration or DEFAULT_MAX_SESSION
    if now >= created + max_duration:
        yield from rt.store.delete(key)
        return Outcome(max_duration_reached=True)
    if opts.idle_duration is not None and now - seen > opts.idle_duration:
        yield from rt.store.delete(key)
        return Outcome(timed_out=True)
    remaining = created + max_duration + COOKIE_GRACE - now
    dirty = False
    touch_every = min(60.0, (opts.idle_duration or 240.0) / 4)
    if now - seen >= touch_every:
        record["seen"] = now
        dirty = True
    refreshed = False
    error: tuple[str, str] | None = None
    expires = record.get("exp")
    token_expired = isinstance(expires, int | float) and now >= expires - 10
    userinfo_due = (
        opts.userinfo_refresh is not None
        and now - float(record.get("ui", created)) >= opts.userinfo_refresh
    )
    due = (token_expired and record.get("rt")) or userinfo_due
    # One refresh per session at a time (a rotating refresh token used twice
    # would revoke the grant); another request meanwhile goes on with what
    # is known.
    if due and (yield from rt.store.add("lock:" + sid, {}, LOCK_TTL, now)):
        # Read the record again past any cache: another edge may have
        # refreshed it just before (its refresh token may be rotated).
        rt.store.forget(key)
        latest = yield from rt.store.get(key, now)
        if latest is None or latest.get("k") != client.key:
            yield from rt.store.delete("lock:" + sid)
            return Outcome()
        record = latest
        if dirty:
            record["seen"] = now
        expires = record.get("exp")
        token_expired = isinstance(expires, int | float) and now >= expires - 10
        userinfo_due = (
            opts.userinfo_refresh is not None
            and now - float(record.get("ui", created)) >= opts.userinfo_refresh
        )
        try:
            ended, refreshed, error = yield from _refresh(
                rt, client, record, now, userinfo_due=userinfo_due, expired=token_expired
            )
        finally:
            yield from rt.store.delete("lock:" + sid)
        if ended:
            yield from rt.store.delete(key)
            return Outcome(error=error)
        dirty = True
    if dirty:
        yield from rt.store.put(key, record, remaining, now)
    session = Session(
        id=sid,
        identity=Identity.from_json(record.get("ident") or {}),
        access_token=str(record.get("at") or ""),
        refresh_token=str(record.get("rt") or ""),
        id_token=str(record.get("it") or ""),
        expires_at=float(expires) if isinstance(expires, int | float) else None,
        ends_at=created + max_duration,
        userinfo_refreshed=refreshed,
    )
    return Outcome(session=session, error=error)


def _refresh(
    rt: Runtime,
    client: Client,
    record: dict[str, Any],
    now: float,
    *,
    userinfo_due: bool,
    expired: bool,
) -> Op:
    """Refresh the tokens and/or userinfo of `record` in place. Returns
    (session ended, userinfo refreshed, error). A refusal by the provider
    (revoked grant, user gone) ends the session; a provider that cannot be
    reached leaves it as it is until the next attempt."""
    try:
        if expired and record.get("rt"):
            tokens = yield from _token_request(
                client,
                {"grant_type": "refresh_token", "refresh_token": str(record["rt"])},
                what="token refresh",
                now=now,
            )
            _store_tokens(record, tokens, now)
        if userinfo_due:
            identity = yield from _fetch_identity(rt, client, record, None, now, refresh=True)
            record["ident"] = identity.to_json()
            record["ui"] = now
            return False, True, None
        return False, False, None
    except (ProviderError, InvalidIdToken) as exc:
        message = str(exc)
        permanent = "invalid_grant" in message or "HTTP 401" in message or "HTTP 403" in message
        if not permanent:
            record["ui"] = now  # try again after another interval, not on every request
        return permanent, False, (Code.PROVIDER, message)
    except DiscoveryUnavailable as exc:
        return False, False, (Code.DISCOVERY, str(exc))


def _store_tokens(record: dict[str, Any], tokens: Mapping[str, Any], now: float) -> None:
    record["at"] = str(tokens.get("access_token") or "")
    if tokens.get("refresh_token"):
        record["rt"] = str(tokens["refresh_token"])
    if tokens.get("id_token"):
        record["it"] = str(tokens["id_token"])
    expires_in = tokens.get("expires_in")
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)
    record["exp"] = (
        now + float(expires_in)
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool)
        else None
    )


# --- steps 2 and 3: the auth host ---------------------------------------------------


def auth_host(rt: Runtime, req: Request) -> Op:
    """Answer a request to the auth host (a `Reply`)."""
    now = rt.clock()
    if req.method not in ("GET", "HEAD"):
        return _page(405, "Method not allowed", "", Code.NOT_FOUND)
    if req.path == START_PATH:
        return (yield from _start(rt, req, now))
    if req.path == CALLBACK_PATH:
        return (yield from _callback(rt, req, now))
    return _page(404, "Not found", "This host only completes logins.", Code.NOT_FOUND)


def _start(rt: Runtime, req: Request, now: float) -> Op:
    try:
        ticket = rt.keyring.unseal("ticket", req.query.get("t", ""), now)
    except SealError:
        return _page(
            400, "Login link expired", "Go back to the page and try again.", Code.BAD_STATE
        )
    client = rt.clients.get(str(ticket.get("k")))
    if client is None:
        return _page(400, "Unknown application", "Reload the page.", Code.BAD_STATE)
    try:
        endpoint, extra = yield from _authorization_endpoint(client, now)
    except DiscoveryUnavailable as exc:
        return _unavailable(exc)
    state = _random()
    verifier = _random()
    oidc_nonce = _random() if client.is_oidc else ""
    challenge = b64e(hashlib.sha256(verifier.encode()).digest())
    tx = rt.keyring.seal(
        "tx",
        {"s": state, "v": verifier, "n": oidc_nonce, "t": ticket, "exp": now + TICKET_TTL},
    )
    creds = client.credentials()
    separator = client.adapter.scope_separator if client.adapter else " "
    params = {
        **client.authz_params,
        "response_type": "code",
        "client_id": creds.client_id,
        "redirect_uri": rt.callback_url,
        "scope": separator.join(client.scopes),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    if oidc_nonce:
        params["nonce"] = oidc_nonce
    if ticket.get("f"):
        params["prompt"] = "login"
    joiner = "&" if "?" in endpoint else "?"
    location = endpoint + joiner + urlencode(params, quote_via=quote)
    cookie = set_cookie(_tx_cookie(state), tx, max_age=int(TICKET_TTL))
    return _redirect(location, [cookie], "login started")


def _tx_cookie(state: str) -> str:
    return "__Host-tx-" + state[:16]


def _unavailable(exc: Exception) -> Reply:
    reply = _page(
        503,
        "Login unavailable",
        "The identity provider cannot be reached right now; try again in a moment.",
        Code.DISCOVERY,
        [(b"retry-after", b"5")],
    )
    reply.reason = f"identity provider discovery failed: {exc}"
    return reply


def _authorization_endpoint(client: Client, now: float) -> Op:
    if client.discovery is not None:
        metadata: Metadata = yield from client.discovery.ensure(now)
        return metadata.authorization_endpoint, {}
    assert client.adapter is not None
    return client.adapter.authorize_url, {}


def _callback(rt: Runtime, req: Request, now: float) -> Op:
    query = req.query
    state = query.get("state", "")
    bad = _page(
        400,
        "Login expired",
        "This login was already completed or has expired. Go back to the page and try again.",
        Code.BAD_STATE,
    )
    if not state or len(state) > 128:
        return bad
    name = _tx_cookie(state)
    bad.headers.append(clear_cookie(name))
    raw = req.cookies().get(name, "")
    try:
        tx = rt.keyring.unseal("tx", raw, now)
    except SealError:
        bad.reason = "callback without a valid transaction cookie"
        return bad
    if not same(str(tx.get("s", "")), state):
        bad.reason = "callback state does not match the transaction"
        return bad
    try:
        first = yield from rt.store.add("state:" + _digest(state), {}, TICKET_TTL, now)
    except StoreError:
        return _page(503, "Sessions unavailable", "Try again shortly.", Code.STORE)
    if not first:
        bad.reason = "replayed callback (state already used)"
        return bad
    ticket = tx.get("t") or {}
    client = rt.clients.get(str(ticket.get("k")))
    if client is None:
        return bad
    if "error" in query:
        error = "".join(c for c in query["error"][:64] if c.isalnum() or c in "_-")
        reply = _page(403, "Login refused", f"The identity provider said: {error}.", Code.PROVIDER)
        reply.headers.append(clear_cookie(name))
        return reply
    code = query.get("code", "")
    try:
        tokens = yield from _token_request(
            client,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": rt.callback_url,
                "code_verifier": str(tx.get("v", "")),
            },
            what="token exchange",
            now=now,
        )
        record: dict[str, Any] = {"k": client.key, "created": now, "seen": now, "ui": now}
        _store_tokens(record, tokens, now)
        identity = yield from _fetch_identity(
            rt, client, record, str(tx.get("n") or "") or None, now, refresh=False
        )
    except DiscoveryUnavailable as exc:
        return _unavailable(exc)
    except InvalidIdToken as exc:
        reply = _page(401, "Login failed", "The identity token was refused.", Code.ID_TOKEN)
        reply.reason = str(exc)
        reply.headers.append(clear_cookie(name))
        return reply
    except ProviderError as exc:
        reply = _page(
            502, "Login failed", "The identity provider refused the login.", Code.PROVIDER
        )
        reply.reason = str(exc)
        reply.headers.append(clear_cookie(name))
        return reply
    record["ident"] = identity.to_json()
    max_age = int(ticket.get("ma") or DEFAULT_MAX_SESSION)
    sid = _random()
    code_out = _random()
    session_ttl = float(max_age + COOKIE_GRACE)  # kept a little longer, like the cookie
    try:
        yield from rt.store.put("session:" + sid, record, session_ttl, now)
        yield from rt.store.put(
            "handoff:" + _digest(code_out),
            {
                "sid": sid,
                "n": ticket.get("n"),
                "o": ticket.get("o"),
                "p": ticket.get("p"),
                "k": client.key,
                "a": ticket.get("a", ""),
                "ma": max_age,
            },
            HANDOFF_TTL,
            now,
        )
    except StoreError:
        return _page(503, "Sessions unavailable", "Try again shortly.", Code.STORE)
    origin = str(ticket.get("o"))
    params = {"code": code_out}
    if ticket.get("a"):
        params["auth_id"] = str(ticket["a"])
    location = f"{origin}{HANDOFF_PATH}?{urlencode(params)}"
    return _redirect(location, [clear_cookie(name)], "login completed")


def _token_request(client: Client, form: dict[str, str], *, what: str, now: float) -> Op:
    creds = client.credentials()
    headers: list[tuple[str, str]] = []
    if client.discovery is not None:
        metadata: Metadata = yield from client.discovery.ensure(now)
        url = metadata.token_endpoint
        auth = metadata.token_auth
    else:
        assert client.adapter is not None
        url = token_url(client.adapter)
        auth = client.adapter.token_auth
    if creds.client_secret and auth == "client_secret_basic":
        pair = f"{quote(creds.client_id, safe='')}:{quote(creds.client_secret, safe='')}"
        headers.append(("authorization", "Basic " + base64.b64encode(pair.encode()).decode()))
    else:
        form = {**form, "client_id": creds.client_id}
        if creds.client_secret:
            form["client_secret"] = creds.client_secret
    tokens = yield from post_form(url, form, headers, what=what)
    if not isinstance(tokens, Mapping) or not tokens.get("access_token"):
        raise ProviderError(f"{what}: no access_token in the answer")
    return tokens


def _fetch_identity(
    rt: Runtime,
    client: Client,
    record: dict[str, Any],
    nonce: str | None,
    now: float,
    *,
    refresh: bool,
) -> Op:
    """The user: from the ID token and userinfo (OIDC) or the provider's
    user API (oauth). On a refresh, the ID token's claims are kept and
    userinfo re-read."""
    token = str(record.get("at") or "")
    creds = client.credentials()
    if client.discovery is None:
        assert client.adapter is not None
        identity: Identity = yield from client.adapter.user(
            client.adapter.bases, token, creds.client_id
        )
        return identity
    metadata: Metadata = yield from client.discovery.ensure(now)
    if refresh:
        claims = dict((record.get("ident") or {}).get("claims") or {})
    else:
        id_token = str(record.get("it") or "")
        if not id_token:
            raise InvalidIdToken("the token response has no id_token")
        keys = yield from client.discovery.key_set(metadata, now, kid=token_kid(id_token))
        claims = validate_id_token(
            id_token, keys, metadata, client_id=creds.client_id, nonce=nonce, now=now
        )
    if metadata.userinfo_endpoint and token:
        info = yield from get_json(
            metadata.userinfo_endpoint,
            (("authorization", f"Bearer {token}"),),
            what="userinfo",
        )
        if isinstance(info, Mapping):
            if str(info.get("sub")) != str(claims.get("sub")):
                raise InvalidIdToken("userinfo is about another subject")
            claims.update({k: v for k, v in info.items() if k not in _ID_TOKEN_ONLY})
    return identity_from_claims(claims)


def identity_from_claims(claims: Mapping[str, Any]) -> Identity:
    email = str(claims.get("email") or "")
    if claims.get("email_verified") is False:
        email = ""  # an unverified address must not pass an email-domain rule
    name = str(
        claims.get("name")
        or claims.get("preferred_username")
        or " ".join(str(claims[k]) for k in ("given_name", "family_name") if claims.get(k))
    )
    return Identity(
        str(claims.get("sub", "")),
        email,
        name,
        str(claims.get("sid") or ""),
        _plain(claims),
    )


def _plain(claims: Mapping[str, Any]) -> dict[str, Any]:
    """Claims as JSON values CEL can hold (no nonce, no token hashes)."""
    return {k: v for k, v in claims.items() if k not in ("nonce", "at_hash", "c_hash")}


def session_ref(sid: str) -> str:
    """The session id as shown to policies and logs (a digest: the id
    itself never leaves the cookie and the store)."""
    return "ses_" + _digest(sid)[:24]


def user_ref(client_key: str, provider_user_id: str) -> str:
    return "idn_" + _digest(client_key + ":" + provider_user_id)[:24]


__all__ = [
    "CALLBACK_PATH",
    "HANDOFF_PATH",
    "LOGIN_PATH",
    "LOGOUT_PATH",
    "RESERVED_AUTHZ_PARAMS",
    "START_PATH",
    "Client",
    "Code",
    "Credentials",
    "Outcome",
    "Reply",
    "Request",
    "Runtime",
    "Session",
    "SessionOptions",
    "auth_host",
    "client_key",
    "cookie_names",
    "guard",
    "identity_from_claims",
    "safe_path",
    "scopes_for",
    "session_ref",
    "strip_cookies",
    "user_ref",
]
