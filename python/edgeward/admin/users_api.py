"""The `users` and `invitations` resources of the admin API (handlers on
`admin.users`; the plumbing — auth, bodies, If-Match, audit — is
`AdminApi`'s).

    GET    /users              admin, auditor: all; developer: itself
    GET    /users/{id}
    PATCH  /users/{id}         admin: {role, acl}       (If-Match)
    DELETE /users/{id}         admin: the user, its invitations and sessions
    GET    /invitations        admin, auditor
    POST   /invitations        admin: {email, role, acl} -> 201, `url` shown once
    GET    /invitations/{id}   admin, auditor
    DELETE /invitations/{id}   admin: the link stops working
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgeward.admin import resources, users
from edgeward.admin.errors import forbidden, invalid, not_found
from edgeward.authtokens.manage import InputError
from edgeward.store import ApiKeyRow
from edgeward.store.user_rows import InvitationRow, UserRow

if TYPE_CHECKING:
    from edgeward.admin.app import AdminApi


def user(base: str, row: UserRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "uri": f"{base}/users/{row.id}",
        "created_at": resources.timestamp(row.created_at),
        "email": row.email,
        "role": row.role,
        "acl": list(row.acl),
        "sso_bound": row.sso_subject is not None,
        "last_login_at": resources.timestamp(row.last_login_at),
    }


def invitation(base: str, row: InvitationRow, url: str | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "uri": f"{base}/invitations/{row.id}",
        "created_at": resources.timestamp(row.created_at),
        "email": row.email,
        "user": resources.ref(base, "users", row.user_id),
        "created_by": row.created_by,
        "expires_at": resources.timestamp(row.expires_at),
        "used_at": resources.timestamp(row.used_at),
        "url": url,
    }


class UsersApi:
    def __init__(self, api: AdminApi, public_url: str | None) -> None:
        self.api = api
        self.public_url = public_url

    def routes(self) -> list[Route]:
        w = self.api._wrap
        return [
            Route("/users", w(self.list_users), methods=["GET"]),
            Route("/users/{id}", w(self.get_user), methods=["GET"]),
            Route("/users/{id}", w(self.update_user, write=True), methods=["PATCH"]),
            Route("/users/{id}", w(self.delete_user, write=True), methods=["DELETE"]),
            Route("/invitations", w(self.list_invitations), methods=["GET"]),
            Route("/invitations", w(self.create_invitation, write=True), methods=["POST"]),
            Route("/invitations/{id}", w(self.get_invitation), methods=["GET"]),
            Route("/invitations/{id}", w(self.delete_invitation, write=True), methods=["DELETE"]),
        ]

    @staticmethod
    def _admin_only(key: ApiKeyRow) -> None:
        if key.role != "admin":
            raise forbidden(f"only an admin manages users and invitations, not a {key.role}")

    @staticmethod
    def _not_developer(key: ApiKeyRow) -> None:
        if key.role == "developer":
            raise forbidden("a developer does not see invitations")

    async def list_users(self, request: Request, key: ApiKeyRow) -> Response:
        rows: list[UserRow] = await self.api._run(users.list_users)
        if key.role == "developer":
            rows = [r for r in rows if r.id == key.id]
        rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        base = self.api._base(request)
        items = [user(base, r) for r in rows]
        page = resources.page(base, "users", items, dict(request.query_params))
        return self.api._json(page, tagged=False)

    async def get_user(self, request: Request, key: ApiKeyRow) -> Response:
        id = request.path_params["id"]
        if key.role == "developer" and id != key.id:
            raise not_found("user", id)
        try:
            row: UserRow = await self.api._run(lambda store: users.get(store, id))
        except users.UnknownUser:
            raise not_found("user", id) from None
        return self.api._json(user(self.api._base(request), row))

    async def update_user(self, request: Request, key: ApiKeyRow) -> Response:
        self._admin_only(key)
        id = request.path_params["id"]
        data = await self.api._body(request, {"role", "acl"})
        acl = self.api._acl(data)
        role = self.api._text(data, "role")
        base = self.api._base(request)
        matches = self.api._if_match(request)
        try:
            row: UserRow = await self.api._run(
                lambda store: users.update(
                    store, id, role=role, acl=acl, check=lambda c: matches(user(base, c))
                )
            )
        except users.UnknownUser:
            raise not_found("user", id) from None
        except InputError as exc:
            raise invalid(str(exc), exc.field) from None
        shown = user(base, row)
        self.api._emit("user_updated.v0", shown, key)
        return self.api._json(shown)

    async def delete_user(self, request: Request, key: ApiKeyRow) -> Response:
        self._admin_only(key)
        id = request.path_params["id"]
        base = self.api._base(request)
        matches = self.api._if_match(request)
        try:
            row: UserRow = await self.api._run(
                lambda store: users.delete(store, id, lambda c: matches(user(base, c)))
            )
        except users.UnknownUser:
            raise not_found("user", id) from None
        self.api._emit("user_deleted.v0", user(base, row), key)
        return Response(status_code=204)

    async def list_invitations(self, request: Request, key: ApiKeyRow) -> Response:
        self._not_developer(key)
        rows: list[InvitationRow] = await self.api._run(users.list_invitations)
        rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        base = self.api._base(request)
        items = [invitation(base, r) for r in rows]
        page = resources.page(base, "invitations", items, dict(request.query_params))
        return self.api._json(page, tagged=False)

    async def create_invitation(self, request: Request, key: ApiKeyRow) -> Response:
        self._admin_only(key)
        data = await self.api._body(request, {"email", "role", "acl"})
        email = self.api._text(data, "email")
        role = self.api._text(data, "role")
        if not email:
            raise invalid("email is required", "email")
        if not role:
            raise invalid("role is required: admin, developer or auditor", "role")
        acl = self.api._acl(data)
        try:
            made: users.Invited = await self.api._run(
                lambda store: users.invite(
                    store, email=email, role=role, acl=acl, created_by=key.id
                )
            )
        except InputError as exc:
            raise invalid(str(exc), exc.field) from None
        base = self.api._base(request)
        link = f"{self.public_url or base}/invite/{made.token.text}"
        shown = invitation(base, made.invitation, link)
        self.api._emit(
            "invitation_created.v0",
            {**{k: v for k, v in shown.items() if k != "url"}, "role": made.user.role,
             "acl": list(made.user.acl)},
            key,
        )  # fmt: skip
        return self.api._json(shown, 201)

    async def get_invitation(self, request: Request, key: ApiKeyRow) -> Response:
        self._not_developer(key)
        id = request.path_params["id"]
        try:
            row: InvitationRow = await self.api._run(
                lambda store: users.get_invitation_row(store, id)
            )
        except users.UnknownInvitation:
            raise not_found("invitation", id) from None
        return self.api._json(invitation(self.api._base(request), row))

    async def delete_invitation(self, request: Request, key: ApiKeyRow) -> Response:
        self._admin_only(key)
        id = request.path_params["id"]
        base = self.api._base(request)
        matches = self.api._if_match(request)
        try:
            row: InvitationRow = await self.api._run(
                lambda store: users.delete_invitation(
                    store, id, lambda c: matches(invitation(base, c))
                )
            )
        except users.UnknownInvitation:
            raise not_found("invitation", id) from None
        self.api._emit("invitation_deleted.v0", invitation(base, row), key)
        return Response(status_code=204)


__all__ = ["UsersApi", "invitation", "user"]
