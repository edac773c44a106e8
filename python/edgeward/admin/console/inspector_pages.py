"""The console's traffic inspector (issue 14): an endpoint's captured
requests, what its policy decided for each, and a replay button. Pages do
what the API does for the signed-in session (`admin.inspector_api`, through
`client.call`): the same roles, the same redaction, the same audit events.

    GET  /console/endpoints/{id}/inspect                      toggle; the captures
    POST /console/endpoints/{id}/inspect                      turn on or off
    POST /console/endpoints/{id}/captures/clear               drop the captures
    GET  /console/endpoints/{id}/captures/{capture_id}        heads, bodies, trace
    POST /console/endpoints/{id}/captures/{capture_id}/replay send it again
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from edgeward.admin.console.pages import Console, Viewer


class InspectorPages:
    def __init__(self, console: Console) -> None:
        self.console = console

    def routes(self) -> list[Route]:
        g = self.console._guard
        base = "/console/endpoints/{id}"
        return [
            Route(base + "/inspect", g(self.inspect), methods=["GET"]),
            Route(base + "/inspect", g(self.toggle), methods=["POST"]),
            Route(base + "/captures/clear", g(self.clear), methods=["POST"]),
            Route(base + "/captures/{capture_id}", g(self.capture), methods=["GET"]),
            Route(base + "/captures/{capture_id}/replay", g(self.replay), methods=["POST"]),
        ]

    async def inspect(
        self, request: Request, viewer: Viewer, *, status: int = 200, notice: str = "",
        error: str = "",
    ) -> Response:  # fmt: skip
        console = self.console
        id = request.path_params["id"]
        path = f"/endpoints/{quote(id, safe='')}"
        endpoint = await console._api(request, viewer, "GET", path)
        if not endpoint.ok:
            return self._refused(viewer, endpoint.status, endpoint.message)
        captures = await console._list(request, viewer, path + "/captures", "captures")
        return console.render(
            "inspector.html", viewer, "/console/endpoints", f"Traffic inspector: {id}", status,
            endpoint=endpoint.data, captures=captures, capture=None,
            can_write=viewer.role != "auditor", notice=notice, error=error,
        )  # fmt: skip

    async def toggle(self, request: Request, viewer: Viewer) -> Response:
        data = await self.console._form(request, viewer)
        id = request.path_params["id"]
        enabled = data.get("enabled") == "true"
        answer = await self.console._api(
            request, viewer, "PATCH", f"/endpoints/{quote(id, safe='')}",
            body={"inspect": {"enabled": enabled}},
        )  # fmt: skip
        if not answer.ok:
            return await self.inspect(request, viewer, status=answer.status, error=answer.message)
        notice = (
            "Inspection is on: the edge captures this endpoint's requests within a second."
            if enabled
            else "Inspection is off: the captures were dropped."
        )
        return await self.inspect(request, viewer, notice=notice)

    async def clear(self, request: Request, viewer: Viewer) -> Response:
        await self.console._form(request, viewer)
        id = request.path_params["id"]
        path = f"/endpoints/{quote(id, safe='')}/captures"
        answer = await self.console._api(request, viewer, "DELETE", path)
        if not answer.ok:
            return await self.inspect(request, viewer, status=answer.status, error=answer.message)
        return await self.inspect(request, viewer, notice="The captures were dropped.")

    async def capture(
        self, request: Request, viewer: Viewer, *, status: int = 200, notice: str = "",
        error: str = "", capture: dict[str, Any] | None = None,
    ) -> Response:  # fmt: skip
        console = self.console
        id = request.path_params["id"]
        if capture is None:
            wanted = request.path_params["capture_id"]
            path = f"/endpoints/{quote(id, safe='')}/captures/{quote(wanted, safe='')}"
            answer = await console._api(request, viewer, "GET", path)
            if not answer.ok:
                return self._refused(viewer, answer.status, answer.message)
            capture = answer.data
        assert capture is not None
        return console.render(
            "inspector.html", viewer, "/console/endpoints", f"Capture {capture['id']}", status,
            endpoint={"id": id}, captures=None, capture=capture,
            can_write=viewer.role != "auditor", notice=notice, error=error,
        )  # fmt: skip

    async def replay(self, request: Request, viewer: Viewer) -> Response:
        await self.console._form(request, viewer)
        id, wanted = request.path_params["id"], request.path_params["capture_id"]
        path = f"/endpoints/{quote(id, safe='')}/captures/{quote(wanted, safe='')}/replay"
        answer = await self.console._api(request, viewer, "POST", path)
        if not answer.ok:
            return await self.capture(request, viewer, status=answer.status, error=answer.message)
        notice = f"Replayed {wanted}: this is the replay's own capture."
        return await self.capture(request, viewer, status=201, notice=notice, capture=answer.data)

    def _refused(self, viewer: Viewer, status: int, message: str) -> Response:
        return self.console.render(
            "message.html", viewer, "/console/endpoints", "Refused", status, lines=[message]
        )


__all__ = ["InspectorPages"]
