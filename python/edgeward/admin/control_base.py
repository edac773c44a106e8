"""What the handlers of the control plane's resources share (IP policies,
rules and restrictions, endpoints made through the API, vaults and
secrets): reading and writing `store.control_rows` in worker threads, role
checks, pages, ETags, and the guard that keeps an admin from locking
themselves out of the API with an IP restriction.

The handlers live in `ip_policies`, `endpoints_api` and `vaults`; each
module's `routes(api)` gives its Starlette routes to `AdminApi`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgeward.admin import resources
from edgeward.admin.errors import LOCKOUT, ApiError, forbidden, invalid, not_found
from edgeward.authtokens.manage import MAX_DESCRIPTION, MAX_METADATA
from edgeward.control.snapshot import read_restrictions
from edgeward.store import ApiKeyRow, Connection, Store
from edgeward.store import control_rows as rows

if TYPE_CHECKING:
    from edgeward.admin.app import AdminApi, Handler

T = TypeVar("T")
Shape = Callable[[str, Any], dict[str, Any]]


def client_ip(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def admin_only(key: ApiKeyRow, what: str) -> None:
    if key.role != "admin":
        raise forbidden(f"only an admin's key changes {what}, not a {key.role}'s")


def not_developer(key: ApiKeyRow, what: str) -> None:
    if key.role == "developer":
        raise forbidden(f"a developer's key does not read {what}")


def described(data: dict[str, Any], *, create: bool) -> dict[str, str | None]:
    """`description` and `metadata` of a body, checked as ngrok's (255 and
    4096 bytes); on create, absent is empty."""
    out: dict[str, str | None] = {}
    for name, most in (("description", MAX_DESCRIPTION), ("metadata", MAX_METADATA)):
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise invalid(f"{name} must be a string", name)
        if value is not None and len(value.encode()) > most:
            raise invalid(f"{name} is longer than {most} bytes", name)
        out[name] = value if value is not None or not create else ""
    return out


def forced(request: Request) -> bool:
    value = request.query_params.get("force", "false").lower()
    if value not in ("true", "false"):
        raise invalid("force must be true or false", "force")
    return value == "true"


def lockout_guard(conn: Connection, request: Request) -> None:
    """After a change to IP policies, rules or restrictions (inside its
    write transaction): refuse it when the `api` restriction it leaves would
    deny the caller's own address, or, for a caller signed in on the web
    (the console: no `Authorization`), the `dashboard` restriction would;
    unless `?force=true`. The transaction then rolls back and nothing changed."""
    if forced(request):
        return
    address = client_ip(request)
    restrictions = read_restrictions(conn)
    kinds = ("api",) if request.headers.get("authorization") else ("api", "dashboard")
    for kind in kinds:
        allowed, restriction = restrictions.verdict(kind, address)
        if not allowed and restriction is not None and restriction.enforced:
            raise ApiError(
                409,
                LOCKOUT,
                f"this change would deny your own address {address} access to the {kind}"
                f" (IP restriction {restriction.id}); send it again with ?force=true to apply it",
            )


class Rows:
    """Store access for one kind of row, as the handlers need it."""

    def __init__(self, api: AdminApi, kind: type[Any], collection: str, name: str, shape: Shape):
        self.api = api
        self.kind = kind
        self.collection = collection
        self.name = name
        self.shape = shape

    async def all(self, **where: str) -> list[Any]:
        found: list[Any] = await self.api._run(
            lambda store: _read(store, lambda c: rows.select_all(c, self.kind, **where))
        )
        return found

    async def one(self, id: str) -> Any:
        row = await self.api._run(lambda store: _read(store, lambda c: rows.get(c, self.kind, id)))
        if row is None:
            raise not_found(self.name, id)
        return row

    async def write(self, call: Callable[[Connection], T]) -> T:
        result: T = await self.api._run(lambda store: _write(store, call))
        return result

    def page(self, request: Request, items: Iterable[Any]) -> Response:
        base = self.api._base(request)
        ordered = sorted(items, key=lambda r: (r.created_at, r.id), reverse=True)
        shown = [self.shape(base, r) for r in ordered]
        return self.api._json(
            resources.page(base, self.collection, shown, dict(request.query_params)), tagged=False
        )

    def current(self, conn: Connection, request: Request, id: str) -> Any:
        """The row `id` inside a write, checked against If-Match."""
        row = rows.get(conn, self.kind, id)
        if row is None:
            raise not_found(self.name, id)
        self.api._if_match(request)(self.shape(self.api._base(request), row))
        return row

    def routes(
        self,
        *,
        create: Handler | None = None,
        update: Handler | None = None,
        delete: Handler | None = None,
        list_: Handler | None = None,
        get: Handler | None = None,
    ) -> list[Route]:
        api, path = self.api, f"/{self.collection}"
        made = [
            Route(path, api._wrap(list_ or self.list_handler), methods=["GET"]),
            Route(path + "/{id}", api._wrap(get or self.get_handler), methods=["GET"]),
        ]
        if create is not None:
            made.append(Route(path, api._wrap(create, write=True), methods=["POST"]))
        if update is not None:
            made.append(Route(path + "/{id}", api._wrap(update, write=True), methods=["PATCH"]))
        if delete is not None:
            made.append(Route(path + "/{id}", api._wrap(delete, write=True), methods=["DELETE"]))
        return made

    async def list_handler(self, request: Request, key: ApiKeyRow) -> Response:
        return self.page(request, await self.all())

    async def get_handler(self, request: Request, key: ApiKeyRow) -> Response:
        row = await self.one(request.path_params["id"])
        return self.api._json(self.shape(self.api._base(request), row))


def _read(store: Store, call: Callable[[Connection], T]) -> T:
    with store.read() as conn:
        return call(conn)


def _write(store: Store, call: Callable[[Connection], T]) -> T:
    with store.write() as conn:
        return call(conn)


def described_shape(base: str, collection: str, row: Any) -> dict[str, Any]:
    """The fields every resource here has, in the public API's order."""
    return {
        "id": row.id,
        "uri": f"{base}/{collection}/{row.id}",
        "created_at": resources.timestamp(row.created_at),
        "description": row.description,
        "metadata": row.metadata,
    }


__all__ = [
    "Rows",
    "admin_only",
    "client_ip",
    "described",
    "described_shape",
    "forced",
    "lockout_guard",
    "not_developer",
]
