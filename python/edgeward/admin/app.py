"""The admin API as an ASGI application (Starlette): routes, API key
authentication, roles, If-Match, audit. Runs in the edge's trio loop
(`admin.service`); store calls go to worker threads through `AsyncStore`.

Every request but `GET /openapi.json` needs `Authorization: Bearer <API key>`
and `Ngrok-Version: 2`, as the public API does. What each role may do:

    resource          admin      developer                          auditor
    credentials       all        own; ACL within its key's grant    read
    api_keys          all        read its own key                   read
    tunnel_sessions   all        own credentials' sessions          read
    endpoints         all        own agent endpoints (read)         read
    endpoints' inspect, captures (traffic inspector)
                      all        own agent endpoints                read
    ip_policies, ip_policy_rules, ip_restrictions, agent_ingresses
                      all        read                               read
    vaults, secrets   all        -                                  read (never a value)
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edgeward.admin import (
    endpoints_api,
    inspector_api,
    ip_policies,
    keys,
    resources,
    users,
    vaults,
)
from edgeward.admin.audit import Audit, AuditEvent, Principal
from edgeward.admin.dataplane import DataPlane
from edgeward.admin.errors import (
    BEYOND_GRANT,
    INVALID,
    METHOD,
    NOT_FOUND,
    STORE,
    VERSION,
    ApiError,
    forbidden,
    invalid,
    not_found,
    precondition,
    unauthorized,
)
from edgeward.admin.events_api import EventsApi
from edgeward.admin.openapi import document
from edgeward.admin.sso.settings import SsoSettings
from edgeward.authtokens import manage
from edgeward.authtokens.acl import Acl, AclError
from edgeward.store import ApiKeyRow, AuthtokenRow, Store, StoreError
from edgeward.store.trio_adapter import AsyncStore

Handler = Callable[[Request, ApiKeyRow], Awaitable[Response]]
MAX_BODY = 64 * 1024  # bytes of a request body: the API's objects are small


class AdminApi:
    """The application and what its handlers share."""

    def __init__(
        self,
        store: AsyncStore,
        dataplane: DataPlane,
        audit: Audit,
        sso: SsoSettings | None = None,
    ) -> None:
        from edgeward.admin.console import Console
        from edgeward.admin.sso.web import WebLogin
        from edgeward.admin.users_api import UsersApi

        self.web = WebLogin(sso, store, audit)  # SSO logins, web sessions (admin.sso)
        self.store = store
        self.dataplane = dataplane
        self.audit = audit
        self._operations = 0
        routes = [
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/credentials", self._wrap(self.list_credentials), methods=["GET"]),
            Route("/credentials", self._wrap(self.create_credential, write=True), methods=["POST"]),
            Route("/credentials/{id}", self._wrap(self.get_credential), methods=["GET"]),
            Route(
                "/credentials/{id}",
                self._wrap(self.update_credential, write=True),
                methods=["PATCH"],
            ),
            Route(
                "/credentials/{id}",
                self._wrap(self.delete_credential, write=True),
                methods=["DELETE"],
            ),
            Route("/api_keys", self._wrap(self.list_api_keys), methods=["GET"]),
            Route("/api_keys", self._wrap(self.create_api_key, write=True), methods=["POST"]),
            Route("/api_keys/{id}", self._wrap(self.get_api_key), methods=["GET"]),
            Route("/api_keys/{id}", self._wrap(self.update_api_key, write=True), methods=["PATCH"]),
            Route(
                "/api_keys/{id}", self._wrap(self.delete_api_key, write=True), methods=["DELETE"]
            ),
            Route("/tunnel_sessions", self._wrap(self.list_sessions), methods=["GET"]),
            Route("/tunnel_sessions/{id}", self._wrap(self.get_session), methods=["GET"]),
            Route(
                "/tunnel_sessions/{id}/stop",
                self._wrap(self.stop_session, write=True),
                methods=["POST"],
            ),
            *EventsApi(self).routes(),
            *ip_policies.routes(self),
            *endpoints_api.routes(self),
            *inspector_api.routes(self),
            *vaults.routes(self),
            *UsersApi(self, sso.public_url if sso else None).routes(),
            # the console (before web's: its /console is the home page) and the sign-in pages:
            # the `dashboard`, behind its IP restriction
            *ip_policies.dashboard_only(self, [*Console(self).routes(), *self.web.routes()]),
        ]
        self.app = Starlette(
            routes=routes, exception_handlers={HTTPException: self._http_exception}
        )

    # --- plumbing ---------------------------------------------------------------------------

    def _operation_id(self) -> str:
        self._operations += 1
        return f"op_{self._operations:08d}"

    async def _http_exception(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            error = ApiError(405, METHOD, f"{request.method} is not allowed on {request.url.path}")
        else:
            error = ApiError(exc.status_code, NOT_FOUND, f"no resource at {request.url.path}")
        return self._error(error)

    def _error(self, error: ApiError) -> Response:
        return JSONResponse(error.body(self._operation_id()), status_code=error.status)

    def _wrap(
        self, handler: Handler, *, write: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            key: ApiKeyRow | None = None
            claimed = ""
            try:
                ip_policies.check(self, request)  # the `api` IP restriction, before the key
                if request.headers.get("ngrok-version") != "2":
                    raise ApiError(
                        400, VERSION, "send the header Ngrok-Version: 2 (the API's version)"
                    )
                scheme, _, presented = request.headers.get("authorization", "").partition(" ")
                presented = presented.strip()
                if not scheme:  # no API key: a web session (cookie, CSRF header for writes)?
                    key = await self.web.api_principal(request, write=write)
                if key is None and (scheme.lower() != "bearer" or not presented):
                    raise unauthorized("send Authorization: Bearer <API key>")
                if key is None:
                    parsed = keys.parse(presented)
                    claimed = parsed.id if parsed is not None else ""
                    key = await self._run(lambda store: keys.authenticate(store, presented))
                if key is None:
                    raise unauthorized("the API key is not valid")
                if write and key.role == "auditor":
                    raise forbidden("an auditor's key reads only")
                response = await handler(request, key)
            except ApiError as error:
                response = self._error(error)
            principal = _principal(key) if key else Principal(claimed)
            self.audit.emit(
                AuditEvent(
                    "api_key_used.v0" if principal.type == "api_key" else "session_used.v0",
                    {
                        "id": principal.id,
                        "method": request.method,
                        "path": request.url.path,
                        "status_code": response.status_code,
                    },
                    principal,
                )
            )
            return response

        return endpoint

    async def _run(self, call: Callable[[Store], Any]) -> Any:
        try:
            return await self.store.run(call)
        except StoreError as exc:
            raise ApiError(503, STORE, f"the state store: {exc}") from None

    def _base(self, request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def _emit(self, event_type: str, obj: dict[str, Any], key: ApiKeyRow) -> None:
        shown = {k: v for k, v in obj.items() if k != "token"}
        self.audit.emit(AuditEvent(event_type, shown, _principal(key)))

    @staticmethod
    async def _body(request: Request, allowed: set[str]) -> dict[str, Any]:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise ApiError(413, INVALID, f"the body is larger than {MAX_BODY} bytes")
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError as exc:
            raise invalid(f"the body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise invalid("the body must be a JSON object")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise invalid(f"unknown field {unknown[0]!r}; known: {', '.join(sorted(allowed))}")
        return data

    @staticmethod
    def _text(data: dict[str, Any], name: str) -> str | None:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise invalid(f"{name} must be a string", name)
        return value

    @staticmethod
    def _acl(data: dict[str, Any]) -> Acl | None:
        value = data.get("acl")
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid("acl must be a list of strings", "acl")
        try:
            return Acl.parse(value, source="acl")
        except AclError as exc:
            raise invalid("; ".join(p.describe("acl") for p in exc.problems), "acl") from None

    @staticmethod
    def _if_match(request: Request) -> Callable[[dict[str, Any]], None]:
        wanted = request.headers.get("if-match")

        def check(current: dict[str, Any]) -> None:
            if wanted is None or wanted.strip() == "*":
                return
            tags = [t.strip() for t in wanted.split(",")]
            if resources.etag(current) not in tags:
                raise precondition("If-Match does not match: the resource changed; GET it again")

        return check

    @staticmethod
    def _json(data: dict[str, Any], status: int = 200, *, tagged: bool = True) -> Response:
        headers = {"ETag": resources.etag(data)} if tagged else None
        return JSONResponse(data, status_code=status, headers=headers)

    async def openapi(self, request: Request) -> Response:
        try:
            ip_policies.check(self, request, "dashboard")  # the one page served without a key
        except ApiError as error:
            return self._error(error)
        return JSONResponse(document())

    # --- credentials ------------------------------------------------------------------------

    def _check_grant(self, key: ApiKeyRow, acl: Acl) -> None:
        if key.role != "developer":
            return
        beyond = acl.beyond(Acl.parse(key.acl, source=f"api key {key.id} acl"))
        if beyond:
            rules = ", ".join(r.text for r in beyond)
            grant = ", ".join(key.acl) or "none"
            raise ApiError(
                403,
                BEYOND_GRANT,
                f"the ACL goes beyond what this key may grant ({grant}): {rules}",
            )

    async def _credential_row(self, id: str, key: ApiKeyRow) -> AuthtokenRow:
        try:
            row: AuthtokenRow = await self._run(lambda store: manage.get(store, id))
        except manage.UnknownAuthtoken:
            raise not_found("credential", id) from None
        if key.role == "developer" and row.owner_id != key.id:
            raise not_found("credential", id)
        return row

    async def list_credentials(self, request: Request, key: ApiKeyRow) -> Response:
        rows: list[AuthtokenRow] = await self._run(manage.list_all)
        if key.role == "developer":
            rows = [r for r in rows if r.owner_id == key.id]
        rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        base = self._base(request)
        items = [resources.credential(base, r) for r in rows]
        return self._json(
            resources.page(base, "credentials", items, dict(request.query_params)), tagged=False
        )

    async def create_credential(self, request: Request, key: ApiKeyRow) -> Response:
        data = await self._body(request, {"description", "metadata", "acl", "owner_id"})
        acl = self._acl(data) or Acl()
        self._check_grant(key, acl)
        description = self._text(data, "description") or ""
        metadata = self._text(data, "metadata") or ""
        owner = self._text(data, "owner_id") or key.id
        if owner != key.id:  # an admin makes a credential for a developer's key
            if key.role != "admin":
                raise forbidden("only an admin's key may set another owner_id")
            try:  # an API key's, or a user's (users.py: usr_...)
                await self._run(
                    lambda store: (
                        users.get(store, owner)
                        if owner.startswith(users.USER_PREFIX)
                        else keys.get(store, owner)
                    )
                )
            except (keys.UnknownApiKey, users.UnknownUser):
                raise invalid(f"owner_id: no API key or user {owner!r}", "owner_id") from None
        try:
            created: manage.Created = await self._run(
                lambda store: manage.create(
                    store, acl=acl, description=description, metadata=metadata, owner_id=owner
                )
            )
        except manage.InputError as exc:
            raise invalid(str(exc), exc.field) from None
        shown = resources.credential(self._base(request), created.row, created.token.text)
        self._emit("credential_created.v0", shown, key)
        return self._json(shown, 201)

    async def get_credential(self, request: Request, key: ApiKeyRow) -> Response:
        row = await self._credential_row(request.path_params["id"], key)
        return self._json(resources.credential(self._base(request), row))

    async def update_credential(self, request: Request, key: ApiKeyRow) -> Response:
        id = request.path_params["id"]
        data = await self._body(request, {"description", "metadata", "acl"})
        acl = self._acl(data)
        if acl is not None:
            self._check_grant(key, acl)
        base = self._base(request)
        matches = self._if_match(request)

        def check(current: AuthtokenRow) -> None:
            if key.role == "developer" and current.owner_id != key.id:
                raise not_found("credential", id)
            if current.revoked:
                raise invalid(f"credential {id!r} is revoked")
            matches(resources.credential(base, current))

        try:
            row: AuthtokenRow = await self._run(
                lambda store: manage.update(
                    store,
                    id,
                    description=self._text(data, "description"),
                    metadata=self._text(data, "metadata"),
                    acl=acl,
                    check=check,
                )
            )
        except manage.UnknownAuthtoken:
            raise not_found("credential", id) from None
        except manage.InputError as exc:
            raise invalid(str(exc), exc.field) from None
        shown = resources.credential(base, row)
        self._emit("credential_updated.v0", shown, key)
        return self._json(shown)

    async def delete_credential(self, request: Request, key: ApiKeyRow) -> Response:
        id = request.path_params["id"]
        base = self._base(request)
        matches = self._if_match(request)

        def check(current: AuthtokenRow) -> None:
            if key.role == "developer" and current.owner_id != key.id:
                raise not_found("credential", id)
            matches(resources.credential(base, current))

        try:
            row: AuthtokenRow = await self._run(lambda store: manage.revoke(store, id, check))
        except manage.UnknownAuthtoken:
            raise not_found("credential", id) from None
        self._emit("credential_deleted.v0", resources.credential(base, row), key)
        return Response(status_code=204)

    # --- api keys ---------------------------------------------------------------------------

    async def _api_key_row(self, id: str, key: ApiKeyRow) -> ApiKeyRow:
        if key.role == "developer" and id != key.id:
            raise not_found("API key", id)
        try:
            row: ApiKeyRow = await self._run(lambda store: keys.get(store, id))
        except keys.UnknownApiKey:
            raise not_found("API key", id) from None
        return row

    @staticmethod
    def _admin_only(key: ApiKeyRow) -> None:
        if key.role != "admin":
            raise forbidden(f"only an admin's key manages API keys, not a {key.role}'s")

    async def list_api_keys(self, request: Request, key: ApiKeyRow) -> Response:
        rows: list[ApiKeyRow] = await self._run(keys.list_all)
        if key.role == "developer":
            rows = [r for r in rows if r.id == key.id]
        rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        base = self._base(request)
        items = [resources.api_key(base, r) for r in rows]
        return self._json(
            resources.page(base, "api_keys", items, dict(request.query_params)), tagged=False
        )

    async def create_api_key(self, request: Request, key: ApiKeyRow) -> Response:
        self._admin_only(key)
        data = await self._body(request, {"description", "metadata", "role", "acl"})
        role = self._text(data, "role")
        if role is None:
            raise invalid("role is required: admin, developer or auditor", "role")
        acl = self._acl(data)
        try:
            created: keys.Created = await self._run(
                lambda store: keys.create(
                    store,
                    role=role,
                    acl=acl,
                    description=self._text(data, "description") or "",
                    metadata=self._text(data, "metadata") or "",
                    owner_id=key.id,
                )
            )
        except manage.InputError as exc:
            raise invalid(str(exc), exc.field) from None
        shown = resources.api_key(self._base(request), created.row, created.key.text)
        self._emit("api_key_created.v0", shown, key)
        return self._json(shown, 201)

    async def get_api_key(self, request: Request, key: ApiKeyRow) -> Response:
        row = await self._api_key_row(request.path_params["id"], key)
        return self._json(resources.api_key(self._base(request), row))

    async def update_api_key(self, request: Request, key: ApiKeyRow) -> Response:
        self._admin_only(key)
        id = request.path_params["id"]
        data = await self._body(request, {"description", "metadata", "acl"})
        acl = self._acl(data)
        base = self._base(request)
        matches = self._if_match(request)
        try:
            row: ApiKeyRow = await self._run(
                lambda store: keys.update(
                    store,
                    id,
                    description=self._text(data, "description"),
                    metadata=self._text(data, "metadata"),
                    acl=acl,
                    check=lambda current: matches(resources.api_key(base, current)),
                )
            )
        except keys.UnknownApiKey:
            raise not_found("API key", id) from None
        except manage.InputError as exc:
            raise invalid(str(exc), exc.field) from None
        shown = resources.api_key(base, row)
        self._emit("api_key_updated.v0", shown, key)
        return self._json(shown)

    async def delete_api_key(self, request: Request, key: ApiKeyRow) -> Response:
        self._admin_only(key)
        id = request.path_params["id"]
        base = self._base(request)
        matches = self._if_match(request)
        shown: dict[str, Any] = {}

        def check(current: ApiKeyRow) -> None:
            shown.update(resources.api_key(base, current))
            matches(shown)

        try:
            await self._run(lambda store: keys.delete(store, id, check))
        except keys.UnknownApiKey:
            raise not_found("API key", id) from None
        self._emit("api_key_deleted.v0", shown, key)
        return Response(status_code=204)

    # --- the data plane: sessions and endpoints -----------------------------------------------

    async def _owned(self, key: ApiKeyRow) -> set[str] | None:
        """The credential ids a developer's key owns; None: every one."""
        if key.role != "developer":
            return None
        rows: list[AuthtokenRow] = await self._run(manage.list_all)
        return {r.id for r in rows if r.owner_id == key.id}

    async def _sessions(self, request: Request, key: ApiKeyRow) -> list[dict[str, Any]]:
        registry = self.dataplane.registry()
        if registry is None:
            return []
        owned = await self._owned(key)
        base = self._base(request)
        sessions = [
            s for s in registry.sessions.values() if owned is None or s.authtoken.id in owned
        ]
        sessions.sort(key=lambda s: (s.started_at, s.id), reverse=True)
        return [resources.tunnel_session(base, s) for s in sessions]

    async def list_sessions(self, request: Request, key: ApiKeyRow) -> Response:
        items = await self._sessions(request, key)
        return self._json(
            resources.page(
                self._base(request), "tunnel_sessions", items, dict(request.query_params)
            ),
            tagged=False,
        )

    async def get_session(self, request: Request, key: ApiKeyRow) -> Response:
        id = request.path_params["id"]
        for item in await self._sessions(request, key):
            if item["id"] == id:
                return self._json(item)
        raise not_found("tunnel session", id)

    async def stop_session(self, request: Request, key: ApiKeyRow) -> Response:
        id = request.path_params["id"]
        for item in await self._sessions(request, key):
            if item["id"] == id:
                break
        else:
            raise not_found("tunnel session", id)
        if not self.dataplane.stop_session(id):
            raise not_found("tunnel session", id)
        self._emit("tunnel_session_stopped.v0", item, key)
        return Response(status_code=204)


def _principal(key: ApiKeyRow) -> Principal:
    """Who made a request: an API key, or a web session's user or
    break-glass admin (whose ids are usr_... and bg_...)."""
    kind = {"usr_": "user", "bg_": "break_glass"}
    found = next((t for p, t in kind.items() if key.id.startswith(p)), "api_key")
    return Principal(key.id, type=found, role=key.role)


__all__ = ["MAX_BODY", "AdminApi"]
