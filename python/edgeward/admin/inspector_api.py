"""The traffic inspector in the admin API (issue 14): an endpoint's opt-in,
and its captured requests on this edge.

    PATCH  /endpoints/{id}          {"inspect": {"enabled": true,
                                      "max_requests": 50, "max_body_bytes": 65536}}
    GET    /endpoints/{id}/captures                  newest first, paged
    GET    /endpoints/{id}/captures/{capture_id}
    POST   /endpoints/{id}/captures/{capture_id}/replay   -> the replay's capture
    DELETE /endpoints/{id}/captures

Who: an admin, on any endpoint; a developer, on its own agents' endpoints
(another's is not found); an auditor reads. The setting is a row of the
store (`endpoint_inspections`), which the edge's watcher applies within
about 250 ms; captures are kept only in the edge's memory, redacted
(`edgeward.redaction`), never in the store. Turning inspection off drops
them. Toggling, clearing and replaying are audit events.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgeward.admin import resources
from edgeward.admin.control_base import Rows
from edgeward.admin.errors import conflict, invalid, not_found
from edgeward.inspection import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_REQUESTS,
    MAX_BODY_BYTES,
    MAX_REQUESTS,
    ReplayRefused,
)
from edgeward.store import ApiKeyRow, Connection
from edgeward.store import control_rows as rows

if TYPE_CHECKING:
    from edgeward.admin.app import AdminApi

FIELDS = {"enabled", "max_requests", "max_body_bytes"}


def inspect_shape(row: rows.InspectionRow | None) -> dict[str, Any]:
    """An endpoint's `inspect` as the API shows it (off, by default)."""
    if row is None:
        return {
            "enabled": False,
            "max_requests": DEFAULT_MAX_REQUESTS,
            "max_body_bytes": DEFAULT_MAX_BODY_BYTES,
        }
    return {
        "enabled": row.enabled,
        "max_requests": row.max_requests,
        "max_body_bytes": row.max_body_bytes,
    }


def _rows(api: AdminApi) -> Rows:
    return Rows(api, rows.InspectionRow, "endpoints", "endpoint inspection", lambda b, r: {})


async def settings(api: AdminApi) -> dict[str, rows.InspectionRow]:
    """Every endpoint's setting, by endpoint id."""
    return {row.id: row for row in await _rows(api).all()}


def _number(data: dict[str, Any], name: str, default: int, most: int, least: int) -> int:
    value = data.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= most:
        raise invalid(f"inspect.{name} must be a number from {least} to {most}", "inspect")
    return value


async def checked(
    api: AdminApi, request: Request, key: ApiKeyRow, id: str, value: Any
) -> rows.InspectionRow:
    """The `inspect` of `PATCH /endpoints/{id}`, checked (nothing is written
    yet: `store` does, once the rest of the change passed). Fields left out
    keep their value (their default, the first time)."""
    from edgeward.admin.endpoints_api import visible

    await visible(api, request, key, id)  # 404 unless the caller sees it (owns it)
    if not isinstance(value, dict):
        raise invalid("inspect must be an object", "inspect")
    unknown = sorted(set(value) - FIELDS)
    if unknown:
        raise invalid(f"inspect: unknown field {unknown[0]!r}; known: {', '.join(sorted(FIELDS))}")
    current = inspect_shape((await settings(api)).get(id))
    enabled = value.get("enabled", current["enabled"])
    if not isinstance(enabled, bool):
        raise invalid("inspect.enabled must be true or false", "inspect")
    return rows.InspectionRow(
        id,
        enabled,
        _number(value, "max_requests", current["max_requests"], MAX_REQUESTS, 1),
        _number(value, "max_body_bytes", current["max_body_bytes"], MAX_BODY_BYTES, 0),
        key.id,
        datetime.now(UTC),
    )


async def store(api: AdminApi, key: ApiKeyRow, row: rows.InspectionRow) -> dict[str, Any]:
    """Write a checked setting (the edge applies it within about 250 ms)
    and audit it; what the API shows of it."""
    id = row.id

    def write(conn: Connection) -> None:
        if rows.get(conn, rows.InspectionRow, id) is None:
            rows.add(conn, row)
        else:
            rows.change(
                conn,
                rows.InspectionRow,
                id,
                enabled=row.enabled,
                max_requests=row.max_requests,
                max_body_bytes=row.max_body_bytes,
                updated_by=row.updated_by,
            )

    await _rows(api).write(write)
    shown = inspect_shape(row)
    api._emit("endpoint_inspection_updated.v0", {"id": id, "inspect": shown}, key)
    return shown


def routes(api: AdminApi) -> list[Route]:
    from edgeward.admin.endpoints_api import visible

    def shaped(request: Request, id: str, capture: dict[str, Any]) -> dict[str, Any]:
        uri = f"{api._base(request)}/endpoints/{id}/captures/{capture['id']}"
        return {"id": capture["id"], "uri": uri, **capture}

    async def captured(request: Request, key: ApiKeyRow) -> tuple[str, list[dict[str, Any]]]:
        id = request.path_params["id"]
        await visible(api, request, key, id)
        return id, [shaped(request, id, c) for c in api.dataplane.captures(id)]

    async def list_captures(request: Request, key: ApiKeyRow) -> Response:
        id, items = await captured(request, key)
        page = resources.page(
            api._base(request), f"endpoints/{id}/captures", items, dict(request.query_params)
        )
        return api._json({"captures": page.pop(f"endpoints/{id}/captures"), **page}, tagged=False)

    async def get_capture(request: Request, key: ApiKeyRow) -> Response:
        _, items = await captured(request, key)
        wanted = request.path_params["capture_id"]
        for item in items:
            if item["id"] == wanted:
                return api._json(item)
        raise not_found("capture", wanted)

    async def replay(request: Request, key: ApiKeyRow) -> Response:
        id, items = await captured(request, key)
        wanted = request.path_params["capture_id"]
        if not any(item["id"] == wanted for item in items):
            raise not_found("capture", wanted)
        try:
            made = await api.dataplane.replay(id, wanted)
        except ReplayRefused as exc:
            raise conflict(f"replay: {exc}") from None
        shown = shaped(request, id, made)
        api._emit(
            "endpoint_capture_replayed.v0",
            {"id": id, "capture_id": wanted, "replay_id": shown["id"]},
            key,
        )
        return api._json(shown, 201)

    async def clear(request: Request, key: ApiKeyRow) -> Response:
        id = request.path_params["id"]
        await visible(api, request, key, id)
        count = api.dataplane.clear_captures(id)
        api._emit("endpoint_captures_cleared.v0", {"id": id, "cleared": count}, key)
        return Response(status_code=204)

    base = "/endpoints/{id}/captures"
    return [
        Route(base, api._wrap(list_captures), methods=["GET"]),
        Route(base, api._wrap(clear, write=True), methods=["DELETE"]),
        Route(base + "/{capture_id}", api._wrap(get_capture), methods=["GET"]),
        Route(base + "/{capture_id}/replay", api._wrap(replay, write=True), methods=["POST"]),
    ]


__all__ = ["checked", "inspect_shape", "routes", "settings", "store"]
