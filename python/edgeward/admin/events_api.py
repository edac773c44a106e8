"""The admin API's `event_destinations` and `event_subscriptions`, shaped
like the public API's: where events go (a file, syslog over TCP or TLS, an
HTTP collector) and which (event types or globs, and a CEL filter).

Admins change them; auditors read them; developers neither (a destination
holds a collector's token). A change is a write to the state store: the
edge's bus applies it within a second (`events.service`). A token is never
shown back (`"********"`); a PATCH of `target` replaces it whole.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgeward.admin import resources
from edgeward.admin.errors import INVALID, ApiError, forbidden, not_found
from edgeward.events import manage
from edgeward.events.errors import SpecError
from edgeward.store import ApiKeyRow
from edgeward.store.event_rows import DestinationRow, SubscriptionRow

if TYPE_CHECKING:
    from edgeward.admin.app import AdminApi

HIDDEN = "********"
DESTINATION_FIELDS = {"description", "metadata", "format", "target"}
SUBSCRIPTION_FIELDS = {"description", "metadata", "sources", "destination_ids", "filter"}


def destination(base: str, row: DestinationRow) -> dict[str, Any]:
    target = {
        kind: {k: (HIDDEN if k == "token" and v else v) for k, v in options.items()}
        for kind, options in row.target.items()
    }
    return {
        "id": row.id,
        "uri": f"{base}/event_destinations/{row.id}",
        "created_at": resources.timestamp(row.created_at),
        "description": row.description,
        "metadata": row.metadata,
        "format": row.format,
        "target": target,
    }


def subscription(base: str, row: SubscriptionRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "uri": f"{base}/event_subscriptions/{row.id}",
        "created_at": resources.timestamp(row.created_at),
        "description": row.description,
        "metadata": row.metadata,
        "sources": [{"type": t} for t in row.sources],
        "destinations": [resources.ref(base, "event_destinations", d) for d in row.destination_ids],
        "filter": row.filter,
    }


def _spec_error(exc: SpecError) -> ApiError:
    located = {"line": exc.line, "column": exc.column} if exc.line is not None else {}
    return ApiError(400, INVALID, str(exc), field=exc.field, **located)


class EventsApi:
    """The handlers; `routes` hands them to the application."""

    COLLECTIONS: ClassVar[dict[str, tuple[Any, str, Any, set[str]]]] = {
        "event_destinations": (
            DestinationRow,
            "event destination",
            destination,
            DESTINATION_FIELDS,
        ),
        "event_subscriptions": (
            SubscriptionRow,
            "event subscription",
            subscription,
            SUBSCRIPTION_FIELDS,
        ),
    }

    def __init__(self, api: AdminApi) -> None:
        self.api = api

    def routes(self) -> list[Route]:
        wrap = self.api._wrap
        out = []
        for name in self.COLLECTIONS:
            out += [
                Route(f"/{name}", wrap(self._list(name)), methods=["GET"]),
                Route(f"/{name}", wrap(self._create(name), write=True), methods=["POST"]),
                Route(f"/{name}/{{id}}", wrap(self._get(name)), methods=["GET"]),
                Route(f"/{name}/{{id}}", wrap(self._update(name), write=True), methods=["PATCH"]),
                Route(f"/{name}/{{id}}", wrap(self._delete(name), write=True), methods=["DELETE"]),
            ]
        return out

    @staticmethod
    def _role(key: ApiKeyRow, write: bool) -> None:
        if key.role == "developer":
            raise forbidden("event destinations and subscriptions are for admins and auditors")
        if write and key.role != "admin":
            raise forbidden(f"only an admin's key changes events, not a {key.role}'s")

    def _list(self, name: str) -> Any:
        kind, _, shape, _ = self.COLLECTIONS[name]

        async def handler(request: Request, key: ApiKeyRow) -> Response:
            self._role(key, write=False)
            rows: list[Any] = await self.api._run(lambda store: manage.list_all(store, kind))
            rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
            base = self.api._base(request)
            items = [shape(base, r) for r in rows]
            page = resources.page(base, name, items, dict(request.query_params))
            return self.api._json(page, tagged=False)

        return handler

    def _create(self, name: str) -> Any:
        kind, _, shape, fields = self.COLLECTIONS[name]
        singular = name.removesuffix("s")

        async def handler(request: Request, key: ApiKeyRow) -> Response:
            self._role(key, write=True)
            data = await self.api._body(request, fields)
            try:
                row = await self.api._run(lambda store: manage.create(store, kind, data))
            except SpecError as exc:
                raise _spec_error(exc) from None
            shown = shape(self.api._base(request), row)
            self.api._emit(f"{singular}_created.v0", shown, key)
            return self.api._json(shown, 201)

        return handler

    def _get(self, name: str) -> Any:
        kind, what, shape, _ = self.COLLECTIONS[name]

        async def handler(request: Request, key: ApiKeyRow) -> Response:
            self._role(key, write=False)
            id = request.path_params["id"]
            try:
                row = await self.api._run(lambda store: manage.get(store, kind, id))
            except manage.UnknownEvent:
                raise not_found(what, id) from None
            return self.api._json(shape(self.api._base(request), row))

        return handler

    def _update(self, name: str) -> Any:
        kind, what, shape, fields = self.COLLECTIONS[name]
        singular = name.removesuffix("s")

        async def handler(request: Request, key: ApiKeyRow) -> Response:
            self._role(key, write=True)
            id = request.path_params["id"]
            data = await self.api._body(request, fields)
            base = self.api._base(request)
            matches = self.api._if_match(request)
            try:
                row = await self.api._run(
                    lambda store: manage.update(
                        store, kind, id, data, lambda current: matches(shape(base, current))
                    )
                )
            except manage.UnknownEvent:
                raise not_found(what, id) from None
            except SpecError as exc:
                raise _spec_error(exc) from None
            shown = shape(base, row)
            self.api._emit(f"{singular}_updated.v0", shown, key)
            return self.api._json(shown)

        return handler

    def _delete(self, name: str) -> Any:
        kind, what, shape, _ = self.COLLECTIONS[name]
        singular = name.removesuffix("s")

        async def handler(request: Request, key: ApiKeyRow) -> Response:
            self._role(key, write=True)
            id = request.path_params["id"]
            base = self.api._base(request)
            matches = self.api._if_match(request)
            try:
                row = await self.api._run(
                    lambda store: manage.delete(
                        store, kind, id, lambda current: matches(shape(base, current))
                    )
                )
            except manage.UnknownEvent:
                raise not_found(what, id) from None
            self.api._emit(f"{singular}_deleted.v0", shape(base, row), key)
            return Response(status_code=204)

        return handler


__all__ = ["EventsApi", "destination", "subscription"]
