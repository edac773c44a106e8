"""The console's routes (Starlette handlers that only move bytes: what a
page shows is the API's answer for the browser's session, `client.call`).

    GET  /console                         home: who you are, what your role may do
    GET  /console/endpoints               every endpoint, live agents, policies; cloud
                                          endpoints made, changed, deleted (`endpoint_pages`)
    GET  /console/sessions                agent sessions;  POST .../{id}/stop
    GET  /console/authtokens              POST: create (the token shown once);
                                          POST .../{id}/revoke
    GET  /console/users                   users and invitations; POST /console/invitations,
                                          POST /console/invitations/{id}/revoke
    GET  /console/audit                   recent audit events (type, principal, time filters)
    GET  /console/policy                  the policy editor; POST: check or test
    GET  /console/ip-policies             IP policies, rules, restrictions (`ip_pages`)
    GET  /console/event-destinations      event destinations, subscriptions (`event_pages`)
    .../endpoints/{id}/inspect, .../captures/...   the traffic inspector (inspector_pages)
    GET  /console/static/console.css      the stylesheet

Every POST carries the session's CSRF token (`csrf_token`), compared in
constant time before anything runs; the API call then carries it as
`X-CSRF-Token`. Pages send the login pages' security headers, with a CSP
that also allows the console's own stylesheet (`style-src 'self'`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from edgeward.admin import session, users
from edgeward.admin.console import policy_editor
from edgeward.admin.console.client import Answer, call
from edgeward.admin.console.endpoint_pages import EndpointPages
from edgeward.admin.console.event_pages import EventPages
from edgeward.admin.console.inspector_pages import InspectorPages
from edgeward.admin.console.ip_pages import IpPages
from edgeward.admin.sso.pages import CSP, SECURITY_HEADERS
from edgeward.store import StoreError
from edgeward.store.web_session_rows import WebSessionRow

if TYPE_CHECKING:
    from edgeward.admin.app import AdminApi

log = logging.getLogger("edgeward.admin")
CONSOLE_CSP = CSP + "; style-src 'self'"
HEADERS = {**SECURITY_HEADERS, "content-security-policy": CONSOLE_CSP}
MAX_FORM = 256 * 1024  # bytes: a long policy and its cases fit
NAV = (
    ("/console", "Home"),
    ("/console/endpoints", "Endpoints"),
    ("/console/sessions", "Sessions"),
    ("/console/authtokens", "Authtokens"),
    ("/console/users", "Users"),
    ("/console/audit", "Audit log"),
    ("/console/policy", "Policy editor"),
    ("/console/ip-policies", "IP policies"),
    ("/console/event-destinations", "Events"),
)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is signed in, with the role and grant the API gives them now."""

    session: WebSessionRow
    who: str
    role: str
    acl: tuple[str, ...]
    method: str


class _Stop(Exception):
    """Answer with this response at once (sign-in page, refusal)."""

    def __init__(self, response: Response) -> None:
        super().__init__()
        self.response = response


Page = Callable[[Request, Viewer], Awaitable[Response]]


class Console:
    def __init__(self, api: AdminApi) -> None:
        self.api = api
        self.templates = Environment(
            loader=PackageLoader("edgeward.admin.console", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.css = resources.files(__package__).joinpath("static/console.css").read_bytes()

    def routes(self) -> list[Route]:
        g = self._guard
        return [
            Route("/console", g(self.home), methods=["GET"]),
            Route("/console/static/console.css", self.stylesheet, methods=["GET"]),
            Route("/console/sessions", g(self.sessions), methods=["GET"]),
            Route("/console/sessions/{id}/stop", g(self.stop_session), methods=["POST"]),
            Route("/console/authtokens", g(self.authtokens), methods=["GET"]),
            Route("/console/authtokens", g(self.create_authtoken), methods=["POST"]),
            Route("/console/authtokens/{id}/revoke", g(self.revoke_authtoken), methods=["POST"]),
            Route("/console/users", g(self.users), methods=["GET"]),
            Route("/console/invitations", g(self.invite), methods=["POST"]),
            Route("/console/invitations/{id}/revoke", g(self.revoke_invite), methods=["POST"]),
            Route("/console/audit", g(self.audit), methods=["GET"]),
            Route("/console/policy", g(self.policy), methods=["GET"]),
            Route("/console/policy", g(self.policy_run), methods=["POST"]),
            *EndpointPages(self).routes(),
            *IpPages(self).routes(),
            *EventPages(self).routes(),
            *InspectorPages(self).routes(),
        ]

    # --- plumbing -----------------------------------------------------------------------------

    def _guard(self, page: Page) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                if self.api.web.settings is None:
                    raise _Stop(self._bare(404, "Single sign-on is not configured (api.sso)."))
                viewer = await self._viewer(request)
                response = await page(request, viewer)
            except _Stop as stop:
                response = stop.response
            except StoreError as exc:
                log.warning("admin console: the state store: %s", exc)
                response = self._bare(503, "The state store cannot be reached.")
            for name, value in HEADERS.items():
                response.headers[name] = value
            return response

        return endpoint

    async def _viewer(self, request: Request) -> Viewer:
        row = await self.api.web.current(request)
        if row is None:
            raise _Stop(RedirectResponse("/login", status_code=303))
        who, role, acl = row.principal_id, row.role, tuple[str, ...]()
        if row.principal_type == "user":
            try:
                user = await self.api.store.run(lambda store: users.get(store, row.principal_id))
            except users.UnknownUser:
                raise _Stop(RedirectResponse("/login", status_code=303)) from None
            who, role, acl = user.email, user.role, user.acl
        return Viewer(row, who, role, tuple(acl), row.method.replace("_", "-"))

    def _bare(self, status: int, text: str) -> HTMLResponse:
        from edgeward.admin.sso.pages import page

        return HTMLResponse(page("edgeward console", text), status_code=status)

    def render(
        self, template: str, viewer: Viewer, here: str, title: str, status: int = 200,
        **values: Any,
    ) -> HTMLResponse:  # fmt: skip
        html = self.templates.get_template(template).render(
            title=title, viewer=viewer, here=here, nav=NAV, csrf=viewer.session.csrf, **values
        )
        return HTMLResponse(html, status_code=status)

    async def _api(
        self, request: Request, viewer: Viewer, method: str, path: str, **kwargs: Any
    ) -> Answer:
        csrf = viewer.session.csrf if method != "GET" else ""
        return await call(self.api.app, request, method, path, csrf=csrf, **kwargs)

    async def _list(self, request: Request, viewer: Viewer, path: str, field: str) -> Any:
        answer = await self._api(request, viewer, "GET", path)
        if not answer.ok:
            raise _Stop(self.render("message.html", viewer, "", "Refused", answer.status,
                                    lines=[answer.message]))  # fmt: skip
        return answer.data[field]

    async def _all(self, request: Request, viewer: Viewer, path: str, field: str) -> list[Any]:
        """Every item of an API list, page after page (the API gives 100 at most)."""
        items: list[Any] = []
        query: dict[str, str] = {}
        while True:
            answer = await self._api(request, viewer, "GET", path, query=query)
            if not answer.ok:
                raise _Stop(self.render("message.html", viewer, "", "Refused", answer.status,
                                        lines=[answer.message]))  # fmt: skip
            items.extend(answer.data[field])
            if not answer.data.get("next_page_uri") or not answer.data[field]:
                return items
            query = {"before_id": answer.data[field][-1]["id"]}

    async def _form(self, request: Request, viewer: Viewer) -> dict[str, str]:
        """The posted form, once its CSRF token is the session's."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_FORM:
                raise _Stop(self._bare(413, "The form is too large."))
            chunks.append(chunk)
        text = b"".join(chunks).decode("utf-8", "replace")
        data = dict(parse_qsl(text, keep_blank_values=True))
        if kind != "application/x-www-form-urlencoded" or not session.csrf_ok(
            viewer.session, data.get(session.CSRF_FIELD)
        ):
            raise _Stop(self.render(
                "message.html", viewer, "", "Refused", 403,
                lines=["The form came without this session's CSRF token: nothing was changed.",
                       "Reload the page and try again."],
            ))  # fmt: skip
        return data

    @staticmethod
    def _rules(text: str) -> list[str]:
        return [line.strip() for line in text.splitlines() if line.strip()]

    async def stylesheet(self, request: Request) -> Response:
        return Response(
            self.css,
            media_type="text/css",
            headers={"cache-control": "no-cache", "x-content-type-options": "nosniff"},
        )

    # --- pages --------------------------------------------------------------------------------

    async def home(self, request: Request, viewer: Viewer) -> Response:
        return self.render("home.html", viewer, "/console", "edgeward console")

    async def sessions(
        self, request: Request, viewer: Viewer, *, status: int = 200, notice: str = "",
        error: str = "",
    ) -> Response:  # fmt: skip
        items = await self._list(request, viewer, "/tunnel_sessions", "tunnel_sessions")
        return self.render(
            "sessions.html", viewer, "/console/sessions", "Tunnel sessions", status,
            sessions=items, can_write=viewer.role != "auditor", notice=notice, error=error,
        )  # fmt: skip

    async def stop_session(self, request: Request, viewer: Viewer) -> Response:
        await self._form(request, viewer)
        id = request.path_params["id"]
        answer = await self._api(request, viewer, "POST", f"/tunnel_sessions/{id}/stop")
        if answer.ok:
            return await self.sessions(request, viewer, notice=f"Session {id} is stopped.")
        return await self.sessions(request, viewer, status=answer.status, error=answer.message)

    async def authtokens(
        self, request: Request, viewer: Viewer, *, status: int = 200, notice: str = "",
        error: str = "", created: dict[str, Any] | None = None,
    ) -> Response:  # fmt: skip
        items = await self._list(request, viewer, "/credentials", "credentials")
        return self.render(
            "authtokens.html", viewer, "/console/authtokens", "Authtokens", status,
            credentials=items, can_write=viewer.role != "auditor", notice=notice, error=error,
            created=created,
        )  # fmt: skip

    async def create_authtoken(self, request: Request, viewer: Viewer) -> Response:
        data = await self._form(request, viewer)
        body: dict[str, Any] = {
            "description": data.get("description", ""),
            "acl": self._rules(data.get("acl", "")),
        }
        if data.get("owner_id", "").strip():
            body["owner_id"] = data["owner_id"].strip()
        answer = await self._api(request, viewer, "POST", "/credentials", body=body)
        if answer.ok:
            return await self.authtokens(request, viewer, status=201, created=answer.data)
        return await self.authtokens(request, viewer, status=answer.status, error=answer.message)

    async def revoke_authtoken(self, request: Request, viewer: Viewer) -> Response:
        await self._form(request, viewer)
        id = request.path_params["id"]
        answer = await self._api(request, viewer, "DELETE", f"/credentials/{id}")
        if answer.ok:
            notice = f"Authtoken {id} is revoked: its agents are being disconnected."
            return await self.authtokens(request, viewer, notice=notice)
        return await self.authtokens(request, viewer, status=answer.status, error=answer.message)

    async def users(
        self, request: Request, viewer: Viewer, *, status: int = 200, notice: str = "",
        error: str = "", invited: dict[str, Any] | None = None,
    ) -> Response:  # fmt: skip
        items = await self._list(request, viewer, "/users", "users")
        invitations = None
        if viewer.role != "developer":
            invitations = await self._list(request, viewer, "/invitations", "invitations")
        return self.render(
            "users.html", viewer, "/console/users", "Users and invitations", status,
            users=items, invitations=invitations, notice=notice, error=error, invited=invited,
        )  # fmt: skip

    async def invite(self, request: Request, viewer: Viewer) -> Response:
        data = await self._form(request, viewer)
        body = {
            "email": data.get("email", "").strip(),
            "role": data.get("role", ""),
            "acl": self._rules(data.get("acl", "")),
        }
        answer = await self._api(request, viewer, "POST", "/invitations", body=body)
        if answer.ok:
            return await self.users(request, viewer, status=201, invited=answer.data)
        return await self.users(request, viewer, status=answer.status, error=answer.message)

    async def revoke_invite(self, request: Request, viewer: Viewer) -> Response:
        await self._form(request, viewer)
        id = request.path_params["id"]
        answer = await self._api(request, viewer, "DELETE", f"/invitations/{id}")
        if answer.ok:
            notice = f"Invitation {id} is revoked: its link no longer works."
            return await self.users(request, viewer, notice=notice)
        return await self.users(request, viewer, status=answer.status, error=answer.message)

    async def audit(self, request: Request, viewer: Viewer) -> Response:
        if viewer.role == "developer":
            return self.render("message.html", viewer, "/console/audit", "Audit log", 403,
                               lines=["Only admins and auditors read the audit log."])  # fmt: skip
        query = request.query_params
        filters = {
            k: query.get(k, "").strip()[:200] for k in ("type", "principal", "since", "until")
        }
        error = ""
        bounds: list[float | None] = []
        for name in ("since", "until"):
            try:
                bounds.append(_instant(filters[name]))
            except ValueError:
                error = f"{name}: not a date and time (YYYY-MM-DDTHH:MM[:SS], UTC)"
                bounds.append(None)
        since, until = bounds
        events = [
            e.as_dict()
            for e in reversed(self.api.audit.recent)
            if (not filters["type"] or filters["type"] in e.event_type)
            and (not filters["principal"] or e.principal.id == filters["principal"])
            and (since is None or e.time >= since)
            and (until is None or e.time <= until)
        ]
        return self.render(
            "audit.html", viewer, "/console/audit", "Audit log", 400 if error else 200,
            events=events, filters=filters, kept=len(self.api.audit.recent), error=error,
        )  # fmt: skip

    async def policy(self, request: Request, viewer: Viewer) -> Response:
        text = ""
        wanted = request.query_params.get("endpoint")
        if wanted:
            answer = await self._api(request, viewer, "GET", f"/endpoints/{wanted}")
            if not answer.ok:
                return self.render("message.html", viewer, "/console/policy", "Policy editor",
                                   answer.status, lines=[answer.message])  # fmt: skip
            text = _readable(answer.data.get("traffic_policy") or "")
        return self.render(
            "policy.html", viewer, "/console/policy", "Policy editor", policy=text, cases=""
        )

    async def policy_run(self, request: Request, viewer: Viewer) -> Response:
        data = await self._form(request, viewer)
        text, cases = data.get("policy", ""), data.get("cases", "")
        checked = tested = None
        if data.get("run") == "test":
            tested = await run_in_threadpool(policy_editor.run_tests, text, cases)
        else:
            checked = await run_in_threadpool(policy_editor.check, text)
        return self.render(
            "policy.html", viewer, "/console/policy", "Policy editor",
            policy=text, cases=cases, checked=checked, tested=tested,
        )  # fmt: skip


def _instant(text: str) -> float | None:
    """A `datetime-local` value, read as UTC; empty: no bound."""
    if not text:
        return None
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _readable(policy: str) -> str:
    """An endpoint's policy as YAML for editing (the API shows static
    endpoints' policies as JSON, agents' as they sent them)."""
    import json

    import yaml

    try:
        data = json.loads(policy)
    except ValueError:
        return policy
    return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


__all__ = ["CONSOLE_CSP", "Console"]
