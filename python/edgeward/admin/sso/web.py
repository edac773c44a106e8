"""The login routes of the console and the API (Starlette handlers that
only move bytes: the flows are `oidc.py`, `saml.py`, `breakglass.py`, the
sessions `admin.session`, the accounts `admin.users`).

    GET  /login                 the sign-in page (IdP links, break-glass form)
    GET  /login/oidc            -> the OpenID Provider
    GET  /login/oidc/callback   <- the provider: verify, MFA rule, session
    GET  /login/saml            -> the SAML IdP (HTTP-Redirect binding)
    POST /login/saml/acs        <- the IdP's signed response (HTTP-POST binding)
    GET  /saml/metadata         our SP metadata
    POST /login/break-glass     username, password, TOTP code
    GET  /invite/{token}        an invitation link: remembered for the login
    POST /logout                ends the session (CSRF token)
    GET  /session               the session as JSON, with its CSRF token

Every login, failed login and logout is an audit event. Logins are limited
per client IP (`login_rate`). Without `api.sso` the routes answer 404.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from edgeward.admin import session, users
from edgeward.admin.audit import Audit, AuditEvent, Principal
from edgeward.admin.errors import STORE, ApiError, forbidden, unauthorized
from edgeward.admin.sso import breakglass, mfa
from edgeward.admin.sso.fetch import drive
from edgeward.admin.sso.oidc import OidcLogin, OidcLoginError, Started, email_of
from edgeward.admin.sso.pages import SECURITY_HEADERS, form, link, page
from edgeward.admin.sso.ratelimit import LoginLimiter
from edgeward.admin.sso.saml import REQUEST_TTL, SamlIdentity, SamlLoginError, in_response_to
from edgeward.admin.sso.settings import SsoSettings
from edgeward.identity.oidc import DiscoveryUnavailable
from edgeward.store import ApiKeyRow, Store, StoreError
from edgeward.store.trio_adapter import AsyncStore
from edgeward.store.user_rows import UserRow
from edgeward.store.web_session_rows import WebSessionRow, add_state, peek_state, take_state

log = logging.getLogger("edgeward.admin")
MAX_FORM = 256 * 1024  # a SAML response with its signature and certificate fits
FLOW_TTL = 600  # seconds: the login cookies live as long as a login may take


class _Refused(Exception):
    def __init__(self, status: int, title: str, reason: str, shown: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.title = title
        self.reason = reason  # for the audit log
        self.shown = shown or reason  # for the page


class WebLogin:
    def __init__(
        self, settings: SsoSettings | None, store: AsyncStore | None, audit: Audit | None
    ) -> None:
        self.settings = settings
        self.store = store
        self.audit = audit
        self.oidc: OidcLogin | None = None
        self.saml: Any = None  # SamlSp: pysaml2 is imported only when SAML is configured
        self.limiter = LoginLimiter(
            settings.login_attempts if settings else 10, settings.login_window if settings else 60
        )
        if settings is not None and settings.oidc is not None:
            self.oidc = OidcLogin(settings.oidc, settings.oidc_redirect_uri)
        if settings is not None and settings.saml is not None:
            from edgeward.admin.sso.saml import SamlSp

            self.saml = SamlSp(settings.saml, settings.saml_acs_url)

    def routes(self) -> list[Route]:
        return [
            Route("/login", self._guard(self.login_page), methods=["GET"]),
            Route("/login/oidc", self._guard(self.oidc_start), methods=["GET"]),
            Route("/login/oidc/callback", self._guard(self.oidc_callback), methods=["GET"]),
            Route("/login/saml", self._guard(self.saml_start), methods=["GET"]),
            Route("/login/saml/acs", self._guard(self.saml_acs), methods=["POST"]),
            Route("/saml/metadata", self._guard(self.saml_metadata), methods=["GET"]),
            Route("/login/break-glass", self._guard(self.break_glass), methods=["POST"]),
            Route("/invite/{token}", self._guard(self.invitation), methods=["GET"]),
            Route("/logout", self._guard(self.logout), methods=["POST"]),
            Route("/session", self._guard(self.session_info), methods=["GET"]),
        ]

    # --- plumbing -----------------------------------------------------------------------------

    @property
    def _settings(self) -> SsoSettings:
        assert self.settings is not None
        return self.settings

    def _guard(self, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            if self.settings is None or self.store is None:
                return self._page(404, "Not found", "Single sign-on is not configured (api.sso).")
            try:
                response: Response = await handler(request)
            except _Refused as exc:
                response = self._page(exc.status, exc.title, exc.shown)
            except StoreError as exc:
                log.warning("admin login: the state store: %s", exc)
                response = self._page(503, "Unavailable", "The state store cannot be reached.")
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return endpoint

    def _page(self, status: int, title: str, *text: str, body_html: str = "") -> HTMLResponse:
        return HTMLResponse(page(title, *text, body_html=body_html), status_code=status)

    async def _run(self, call: Callable[[Store], Any]) -> Any:
        assert self.store is not None
        return await self.store.run(call)

    @staticmethod
    def _ip(request: Request) -> str:
        return request.client.host if request.client else ""

    def _cookie(self, name: str, value: str, max_age: int, *, same_site: str = "Lax") -> str:
        secure = self._settings.secure
        full = ("__Host-" if secure else "") + name
        flags = "; Secure" if secure else ""
        return f"{full}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age}{flags}"

    def _read_cookie(self, request: Request, name: str) -> str:
        full = ("__Host-" if self._settings.secure else "") + name
        return request.cookies.get(full, "")

    def _limit(self, request: Request, method: str) -> None:
        ip = self._ip(request)
        now = time.monotonic()
        if not self.limiter.allow(ip, now):
            self._emit("login_failed.v0", {"method": method, "ip": ip, "reason": "rate limited"})
            raise _Refused(
                429,
                "Too many sign-in attempts",
                "rate limited",
                f"Too many sign-in attempts from this address; wait"
                f" {self.limiter.retry_after(ip, now)} seconds.",
            )

    def _emit(
        self, event_type: str, obj: dict[str, Any], principal: Principal | None = None
    ) -> None:
        if self.audit is not None:
            self.audit.emit(
                AuditEvent(event_type, obj, principal or Principal("", type="anonymous"))
            )

    def _fail(self, request: Request, method: str, exc: _Refused, email: str = "") -> Response:
        obj = {"method": method, "ip": self._ip(request), "reason": exc.reason}
        if email:
            obj["email"] = email
        self._emit("login_failed.v0", obj)
        log.info("admin login failed (%s) from %s: %s", method, obj["ip"], exc.reason)
        return self._page(
            exc.status, exc.title, exc.shown, body_html=link("/login", "Back to sign-in")
        )

    async def _form(self, request: Request) -> dict[str, str]:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise _Refused(415, "Bad request", "not a form post")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_FORM:
                raise _Refused(413, "Bad request", "form too large")
            chunks.append(chunk)
        return dict(parse_qsl(b"".join(chunks).decode("utf-8", "replace"), keep_blank_values=True))

    async def _signed_in(
        self, request: Request, *, principal_id: str, principal_type: str, role: str, method: str,
        extra: dict[str, Any],
    ) -> Response:  # fmt: skip
        settings = self._settings
        made: session.Made = await self._run(
            lambda store: session.create(
                store,
                principal_id=principal_id,
                principal_type=principal_type,
                role=role,
                method=method,
                client_ip=self._ip(request),
                max_duration=settings.max_session,
            )
        )
        principal = Principal(principal_id, type=principal_type, role=role)
        obj = {"method": method, "ip": self._ip(request), "session": _ref(made.row), **extra}
        self._emit("login_succeeded.v0", obj, principal)
        response = RedirectResponse("/console", status_code=303)
        cookie = session.set_cookie(
            made.token, secure=settings.secure, max_age=int(settings.max_session)
        )
        response.headers.append("set-cookie", cookie)
        for name in ("edgeward-invite", "edgeward-oidc", "edgeward-saml"):
            response.headers.append("set-cookie", self._cookie(name, "", 0))
        return response

    async def _bind(
        self, request: Request, method: str, subject: str, email: str, invitation: str
    ) -> UserRow:
        """The user this SSO identity signs in as; on its first login (the
        invitation used, the identity bound) a `user_bound.v0` event."""
        try:
            signed: users.SignedIn = await self._run(
                lambda store: users.login(
                    store, subject=subject, email=email, invitation=invitation or None
                )
            )
        except users.LoginRefused as exc:
            raise _Refused(403, "No access", f"no account: {exc}", str(exc)) from None
        user = signed.user
        if signed.accepted is not None:
            obj = {
                "id": user.id, "email": user.email, "role": user.role, "acl": list(user.acl),
                "method": method, "ip": self._ip(request),
                "invitation": {"id": signed.accepted.id, "created_by": signed.accepted.created_by},
            }  # fmt: skip
            self._emit("user_bound.v0", obj, Principal(user.id, type="user", role=user.role))
        return user

    async def current(self, request: Request) -> WebSessionRow | None:
        """The request's live session, if any."""
        if self.settings is None or self.store is None:
            return None
        token = request.cookies.get(session.cookie_name(self.settings.secure), "")
        if not token:
            return None
        idle = self.settings.idle_session
        row: WebSessionRow | None = await self._run(
            lambda store: session.lookup(store, token, idle_duration=idle)
        )
        return row

    async def api_principal(self, request: Request, *, write: bool) -> ApiKeyRow | None:
        """For the API: the session's principal shaped as a key row (its id
        is the user's, its role and grant the user's current ones), or None
        without a session cookie. A write needs the `X-CSRF-Token` header."""
        if (
            self.settings is None
            or session.cookie_name(self.settings.secure) not in request.cookies
        ):
            return None
        try:
            return await self._api_principal(request, write=write)
        except StoreError as exc:
            raise ApiError(503, STORE, f"the state store: {exc}") from None

    async def _api_principal(self, request: Request, *, write: bool) -> ApiKeyRow:
        row = await self.current(request)
        if row is None:
            raise unauthorized("the session has ended: sign in again")
        if write and not session.csrf_ok(row, request.headers.get(session.CSRF_HEADER)):
            raise forbidden("a write with a session needs its X-CSRF-Token header (GET /session)")
        role, acl = row.role, ()
        if row.principal_type == "user":
            try:
                user = await self._run(lambda store: users.get(store, row.principal_id))
            except users.UnknownUser:
                raise unauthorized("the user no longer exists") from None
            role, acl = user.role, user.acl
        return ApiKeyRow(row.principal_id, "", "", "", role, acl, row.created_at)

    # --- pages --------------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        settings = self._settings
        csrf = secrets.token_urlsafe(24)
        links = ""
        if settings.oidc is not None:
            links += link("/login/oidc", "Sign in with OpenID Connect", "oidc")
        if settings.saml is not None:
            links += link("/login/saml", "Sign in with SAML", "saml")
        glass = "<h2>Break-glass administrator</h2>" + form(
            "/login/break-glass",
            [("username", "text", "Username"), ("password", "password", "Password"),
             ("code", "text", "Authenticator code")],
            "Sign in (audited)",
            csrf,
        )  # fmt: skip
        response = self._page(200, "Sign in", body_html=links + glass)
        response.headers.append("set-cookie", self._cookie("edgeward-login-csrf", csrf, FLOW_TTL))
        return response

    async def invitation(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            row = await self._run(lambda store: users.check_invitation(store, token))
        except users.LoginRefused as exc:
            self._emit("login_failed.v0", {"method": "invitation", "ip": self._ip(request),
                                           "reason": str(exc)})  # fmt: skip
            raise _Refused(400, "Invitation not valid", str(exc)) from None
        user = await self._run(lambda store: users.get(store, row.user_id))
        settings = self._settings
        links = ""
        if settings.oidc is not None:
            links += link("/login/oidc", "Sign in with OpenID Connect", "oidc")
        if settings.saml is not None:
            links += link("/login/saml", "Sign in with SAML", "saml")
        response = self._page(
            200,
            "You are invited",
            f"This invitation is for {row.email}, as {user.role}.",
            "Sign in with your company account to accept it.",
            body_html=links,
        )
        ttl = max(1, min(FLOW_TTL * 6, int((row.expires_at - datetime.now(UTC)).total_seconds())))
        response.headers.append("set-cookie", self._cookie("edgeward-invite", token, ttl))
        return response

    async def session_info(self, request: Request) -> Response:
        row = await self.current(request)
        if row is None:
            error = unauthorized("no session: sign in at /login")
            return JSONResponse(error.body("op_session"), status_code=401)
        return JSONResponse(
            {
                "principal": {"id": row.principal_id, "type": row.principal_type, "role": row.role},
                "method": row.method,
                "csrf_token": row.csrf,
                "created_at": _time(row.created_at),
                "expires_at": _time(row.expires_at),
            }
        )

    async def logout(self, request: Request) -> Response:
        data = await self._form(request)
        row = await self.current(request)
        if row is None:
            return RedirectResponse("/login", status_code=303)
        if not session.csrf_ok(row, data.get(session.CSRF_FIELD)):
            raise _Refused(403, "Refused", "The form is stale: reload the page and try again.")
        token = request.cookies.get(session.cookie_name(self._settings.secure), "")
        await self._run(lambda store: session.end(store, token))
        principal = Principal(row.principal_id, type=row.principal_type, role=row.role)
        self._emit("logout.v0", {"ip": self._ip(request), "session": _ref(row)}, principal)
        response = self._page(200, "Signed out", body_html=link("/login", "Sign in again"))
        response.headers.append("set-cookie", session.clear_cookie(secure=self._settings.secure))
        return response

    # --- OpenID Connect -----------------------------------------------------------------------

    async def oidc_start(self, request: Request) -> Response:
        if self.oidc is None:
            raise _Refused(404, "Not found", "OpenID Connect is not configured.")
        self._limit(request, "oidc")
        try:
            started: Started = await drive(self.oidc.start(time.time()))
        except DiscoveryUnavailable as exc:
            return self._fail(request, "oidc", _Refused(
                503, "Sign-in unavailable", f"discovery: {exc}",
                "The identity provider cannot be reached; try again, or use break-glass.",
            ))  # fmt: skip
        tx = {**started.transaction, "invite": self._read_cookie(request, "edgeward-invite")}
        expires = datetime.now(UTC) + timedelta(seconds=FLOW_TTL)
        await self._run(lambda store: _add(store, started.key, tx, expires))
        response = RedirectResponse(started.location, status_code=302)
        response.headers.append(
            "set-cookie", self._cookie("edgeward-oidc", started.browser, FLOW_TTL)
        )
        return response

    async def oidc_callback(self, request: Request) -> Response:
        if self.oidc is None:
            raise _Refused(404, "Not found", "OpenID Connect is not configured.")
        self._limit(request, "oidc")
        query = dict(request.query_params)
        from edgeward.admin.sso.oidc import transaction_key

        state = query.get("state", "")
        key = transaction_key(state) if 0 < len(state) <= 128 else ""
        tx = await self._run(lambda store: _take(store, key)) if key else None
        browser = self._read_cookie(request, "edgeward-oidc")
        email = ""
        try:
            try:
                claims = await drive(self.oidc.finish(query, tx, browser, time.time()))
            except OidcLoginError as exc:
                raise _Refused(exc.status, exc.title, exc.reason, _shown(exc.status)) from None
            email = email_of(claims)
            refusal = mfa.oidc_refusal(self._settings.mfa, claims)
            if refusal is not None:
                raise _Refused(403, "Multi-factor authentication required",
                               f"no MFA: {refusal}", _MFA_TEXT)  # fmt: skip
            assert tx is not None
            user = await self._bind(
                request, "oidc", self.oidc.subject(claims), email, str(tx.get("invite") or "")
            )
        except _Refused as exc:
            return self._fail(request, "oidc", exc, email)
        return await self._signed_in(
            request, principal_id=user.id, principal_type="user", role=user.role, method="oidc",
            extra={"email": user.email, "amr": claims.get("amr"), "acr": claims.get("acr")},
        )  # fmt: skip

    # --- SAML ---------------------------------------------------------------------------------

    async def saml_start(self, request: Request) -> Response:
        if self.saml is None:
            raise _Refused(404, "Not found", "SAML is not configured.")
        self._limit(request, "saml")
        from starlette.concurrency import run_in_threadpool

        location, request_id = await run_in_threadpool(self.saml.start)
        browser = secrets.token_urlsafe(32)
        from edgeward.admin.sso.oidc import digest

        data = {"browser": digest(browser), "invite": self._read_cookie(request, "edgeward-invite")}
        expires = datetime.now(UTC) + timedelta(seconds=REQUEST_TTL)
        await self._run(lambda store: _add(store, "saml-req:" + request_id, data, expires))
        response = RedirectResponse(location, status_code=302)
        # The IdP posts back cross-site: over https this cookie is SameSite=None.
        same_site = "None" if self._settings.secure else "Lax"
        response.headers.append(
            "set-cookie", self._cookie("edgeward-saml", browser, FLOW_TTL, same_site=same_site)
        )
        return response

    async def saml_acs(self, request: Request) -> Response:
        if self.saml is None:
            raise _Refused(404, "Not found", "SAML is not configured.")
        self._limit(request, "saml")
        from starlette.concurrency import run_in_threadpool

        from edgeward.admin.sso.oidc import digest
        from edgeward.identity.seal import same

        data = await self._form(request)
        posted = data.get("SAMLResponse", "")
        email = ""
        try:
            request_id = in_response_to(posted)
            key = "saml-req:" + request_id
            # Read, not used yet: a response refused below leaves its request
            # open, and its assertion's ID recorded (so it cannot come back).
            outstanding = (
                await self._run(lambda store: _peek(store, key))
                if request_id and len(request_id) <= 128
                else None
            )
            if outstanding is None:
                raise _Refused(400, "Login expired", "SAML response to no outstanding request",
                               _shown(400))  # fmt: skip
            browser = self._read_cookie(request, "edgeward-saml")
            if not browser or not same(digest(browser), str(outstanding.get("browser", ""))):
                raise _Refused(400, "Login expired", "the SAML response came to another browser",
                               _shown(400))  # fmt: skip
            now = datetime.now(UTC)
            try:
                identity: SamlIdentity = await run_in_threadpool(
                    self.saml.finish, posted, {request_id: "/console"}, now
                )
            except SamlLoginError as exc:
                raise _Refused(exc.status, exc.title, exc.reason, _shown(exc.status)) from None
            email = identity.email
            keep = max(identity.not_on_or_after, now) + timedelta(minutes=5)
            fresh = await self._run(
                lambda store: _add(store, "saml-id:" + identity.assertion_id[:140], {}, keep)
            )
            if not fresh:
                raise _Refused(401, "Login failed", "replayed SAML assertion", _shown(401))
            refusal = mfa.saml_refusal(self._settings.mfa, identity.contexts)
            if refusal is not None:
                raise _Refused(403, "Multi-factor authentication required",
                               f"no MFA: {refusal}", _MFA_TEXT)  # fmt: skip
            user = await self._bind(
                request, "saml", identity.subject, email, str(outstanding.get("invite") or "")
            )
            if await self._run(lambda store: _take(store, key)) is None:  # used meanwhile
                raise _Refused(400, "Login expired", "SAML request already answered", _shown(400))
        except _Refused as exc:
            return self._fail(request, "saml", exc, email)
        return await self._signed_in(
            request, principal_id=user.id, principal_type="user", role=user.role, method="saml",
            extra={"email": user.email, "authn_context": list(identity.contexts)},
        )  # fmt: skip

    async def saml_metadata(self, request: Request) -> Response:
        if self.saml is None:
            raise _Refused(404, "Not found", "SAML is not configured.")
        from starlette.concurrency import run_in_threadpool

        xml = await run_in_threadpool(self.saml.metadata)
        return Response(xml, media_type="application/samlmetadata+xml")

    # --- break-glass --------------------------------------------------------------------------

    async def break_glass(self, request: Request) -> Response:
        self._limit(request, "break_glass")
        data = await self._form(request)
        username = data.get("username", "")[:64]
        try:
            expected = self._read_cookie(request, "edgeward-login-csrf")
            from edgeward.identity.seal import same

            if not expected or not same(expected, data.get(session.CSRF_FIELD, "")):
                raise _Refused(403, "Refused", "login form without its CSRF token",
                               "The form is stale: reload the sign-in page.")  # fmt: skip
            ok = await self._run(
                lambda store: breakglass.verify(
                    store, username, data.get("password", ""), data.get("code", ""), time.time()
                )
            )
            if not ok:
                raise _Refused(
                    401,
                    "Sign-in failed",
                    "break-glass: wrong username, password or code",
                    "Wrong username, password or code.",
                )
        except _Refused as exc:
            exc.reason = f"{exc.reason} (username {username!r})"
            return self._fail(request, "break_glass", exc)
        principal = breakglass.principal_id(username)
        log.warning("BREAK-GLASS login by %r from %s", username, self._ip(request))
        self._emit(
            "break_glass_login.v0",
            {"username": username, "ip": self._ip(request)},
            Principal(principal, type="break_glass", role="admin"),
        )
        return await self._signed_in(
            request, principal_id=principal, principal_type="break_glass", role="admin",
            method="break_glass", extra={"username": username},
        )  # fmt: skip


_MFA_TEXT = (
    "Your sign-in did not use a second factor, and this console requires one. Sign in again"
    " with your authenticator (or security key) at the identity provider."
)


def _shown(status: int) -> str:
    if status == 503:
        return "The identity provider cannot be reached; try again shortly."
    if status == 400:
        return "This sign-in was already completed or has expired. Start again."
    return "The identity provider's answer was refused. Start again."


def _ref(row: WebSessionRow) -> str:
    return "ses_" + row.id[:24]


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _add(store: Store, key: str, data: dict[str, Any], expires: datetime) -> bool:
    with store.write() as conn:
        return add_state(conn, key, data, expires)


def _peek(store: Store, key: str) -> dict[str, Any] | None:
    with store.read() as conn:
        return peek_state(conn, key, datetime.now(UTC))


def _take(store: Store, key: str) -> dict[str, Any] | None:
    with store.write() as conn:
        return take_state(conn, key, datetime.now(UTC))


__all__ = ["ApiError", "WebLogin"]
