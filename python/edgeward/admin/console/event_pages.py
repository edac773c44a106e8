"""The console's event destinations page: where events go (a file of JSON
lines, syslog, an HTTP collector) and the subscriptions that send them
(event types or globs, an optional CEL filter). Every change is the API's
(`/event_destinations`, `/event_subscriptions`): admins write, auditors
read, developers are refused, as the API decides; its refusals are shown
with its words and status, a CEL error under the filter's line.

    GET  /console/event-destinations                 destinations and subscriptions
    POST /console/event-destinations                 kind (file|syslog|http), format,
                                                     description and the kind's fields
    POST /console/event-destinations/{id}/delete
    POST /console/event-subscriptions                destination_id, sources, filter,
                                                     description
    POST /console/event-subscriptions/{id}/delete

A collector's token is write-only: the API shows it as `********`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgeward.admin.console.client import Answer

if TYPE_CHECKING:
    from edgeward.admin.console.pages import Console, Viewer

HERE = "/console/event-destinations"
TITLE = "Event destinations"
# The form's fields of each kind, as the API's `target.<kind>` names them.
KIND_FIELDS = {
    "file": ("path",),
    "syslog": ("address", "app_name", "facility"),
    "http": ("url", "shape", "token", "ca"),
}


@dataclass(frozen=True, slots=True)
class FilterError:
    """A CEL error placed under its line of the filter, as the editor shows it."""

    message: str
    lines: list[str]
    line: int  # 1-based
    column: int  # 1-based


def target(data: dict[str, str]) -> dict[str, Any]:
    """The API's `target` from a destination form: the chosen kind's
    filled-in fields (an empty field: the API's default)."""
    kind = data.get("kind", "")
    options: dict[str, Any] = {
        name: data[name].strip() for name in KIND_FIELDS.get(kind, ()) if data.get(name, "").strip()
    }
    if kind == "syslog" and data.get("tls") == "on":
        tls = {k: data[f"tls_{k}"].strip() for k in ("ca", "server_name") if data.get(f"tls_{k}")}
        options["tls"] = tls
    return {kind: options}


def sources(text: str) -> list[dict[str, str]]:
    """Event types or globs, separated by commas, spaces or lines."""
    return [{"type": t} for t in re.split(r"[\s,]+", text) if t]


def located(answer: Answer, text: str) -> FilterError | None:
    """The API's CEL error with its line and column, if it is one."""
    details = (answer.data.get("details") or {}) if isinstance(answer.data, dict) else {}
    if details.get("field") != "filter" or not isinstance(details.get("line"), int):
        return None
    return FilterError(
        answer.message, text.splitlines() or [""], details["line"], int(details.get("column", 1))
    )


class EventPages:
    def __init__(self, console: Console) -> None:
        self.console = console

    def routes(self) -> list[Route]:
        g = self.console._guard
        sub = "/console/event-subscriptions"
        return [
            Route(HERE, g(self.page), methods=["GET"]),
            Route(HERE, g(self.create_destination), methods=["POST"]),
            Route(HERE + "/{id}/delete", g(self.delete_destination), methods=["POST"]),
            Route(sub, g(self.create_subscription), methods=["POST"]),
            Route(sub + "/{id}/delete", g(self.delete_subscription), methods=["POST"]),
        ]

    async def page(
        self, request: Request, viewer: Viewer, *, status: int = 200, notice: str = "",
        error: str = "", posted: dict[str, str] | None = None,
        filter_error: FilterError | None = None,
    ) -> Response:  # fmt: skip
        c = self.console
        destinations = await self.console._all(
            request, viewer, "/event_destinations", "event_destinations"
        )
        subscriptions = await self.console._all(
            request, viewer, "/event_subscriptions", "event_subscriptions"
        )
        return c.render(
            "event_destinations.html", viewer, HERE, TITLE, status,
            destinations=destinations, subscriptions=subscriptions,
            names={d["id"]: d["description"] for d in destinations},
            can_write=viewer.role == "admin", notice=notice, error=error,
            posted=posted or {}, filter_error=filter_error,
        )  # fmt: skip

    async def create_destination(self, request: Request, viewer: Viewer) -> Response:
        data = await self.console._form(request, viewer)
        body = {
            "description": data.get("description", "").strip(),
            "format": data.get("format") or "json",
            "target": target(data),
        }
        answer = await self.console._api(request, viewer, "POST", "/event_destinations", body=body)
        if answer.ok:
            notice = f"Event destination {answer.data['id']} is created."
            return await self.page(request, viewer, status=201, notice=notice)
        return await self.page(request, viewer, status=answer.status, error=answer.message)

    async def delete_destination(self, request: Request, viewer: Viewer) -> Response:
        await self.console._form(request, viewer)
        id = request.path_params["id"]
        answer = await self.console._api(request, viewer, "DELETE", f"/event_destinations/{id}")
        if answer.ok:
            return await self.page(request, viewer, notice=f"Event destination {id} is deleted.")
        return await self.page(request, viewer, status=answer.status, error=answer.message)

    async def create_subscription(self, request: Request, viewer: Viewer) -> Response:
        data = await self.console._form(request, viewer)
        text = data.get("filter", "").replace("\r\n", "\n")
        destination = data.get("destination_id", "").strip()
        body = {
            "description": data.get("description", "").strip(),
            "sources": sources(data.get("sources", "")),
            "destination_ids": [destination] if destination else [],
            "filter": text.strip(),
        }
        answer = await self.console._api(request, viewer, "POST", "/event_subscriptions", body=body)
        if answer.ok:
            notice = f"Event subscription {answer.data['id']} is created."
            return await self.page(request, viewer, status=201, notice=notice)
        return await self.page(
            request, viewer, status=answer.status, error=answer.message, posted=data,
            filter_error=located(answer, text.strip()),
        )  # fmt: skip

    async def delete_subscription(self, request: Request, viewer: Viewer) -> Response:
        await self.console._form(request, viewer)
        id = request.path_params["id"]
        answer = await self.console._api(request, viewer, "DELETE", f"/event_subscriptions/{id}")
        if answer.ok:
            return await self.page(request, viewer, notice=f"Event subscription {id} is deleted.")
        return await self.page(request, viewer, status=answer.status, error=answer.message)


__all__ = ["EventPages", "located", "sources", "target"]
