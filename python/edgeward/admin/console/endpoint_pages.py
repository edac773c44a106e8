"""The console's endpoints page: what the API lists, and the cloud endpoint
forms (create; change the policy and description; delete). The API decides
who may (`endpoints_api`: an admin) and compiles the policy; a policy it
refuses comes back with its diagnostics, shown under their lines and
columns as the policy editor shows its own (`policy_editor.located`).

    GET  /console/endpoints                 the endpoints; POST: make a cloud endpoint
    POST /console/endpoints/{id}/update     its policy and description (If-Match: the
                                            version the page showed, so none is lost)
    POST /console/endpoints/{id}/delete
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgeward.admin import resources
from edgeward.admin.console import policy_editor
from edgeward.admin.console.client import Answer

if TYPE_CHECKING:
    from edgeward.admin.console.pages import Console, Viewer

HERE = "/console/endpoints"
NEW = ""  # `Refused.target` of the create form


@dataclass(frozen=True, slots=True)
class Refused:
    """A form the API refused, shown again as it was sent: `target` is the
    endpoint it changes (`NEW`: the create form), `checked` the policy's
    located diagnostics when the policy was the reason."""

    target: str
    form: dict[str, str]
    checked: policy_editor.Checked | None


class EndpointPages:
    def __init__(self, console: Console) -> None:
        self.console = console

    def routes(self) -> list[Route]:
        g = self.console._guard
        return [
            Route(HERE, g(self.page), methods=["GET"]),
            Route(HERE, g(self.create), methods=["POST"]),
            Route(HERE + "/{id}/update", g(self.update), methods=["POST"]),
            Route(HERE + "/{id}/delete", g(self.delete), methods=["POST"]),
        ]

    async def page(
        self, request: Request, viewer: Viewer, *, status: int = 200, notice: str = "",
        error: str = "", refused: Refused | None = None,
    ) -> Response:  # fmt: skip
        items = await self.console._list(request, viewer, "/endpoints", "endpoints")
        for item in items:
            item["etag"] = resources.etag(item)
        return self.console.render(
            "endpoints.html", viewer, HERE, "Endpoints", status,
            endpoints=items, can_write=viewer.role == "admin", notice=notice, error=error,
            refused=refused,
        )  # fmt: skip

    async def _done(
        self, request: Request, viewer: Viewer, answer: Answer, notice: str, *, target: str,
        form: dict[str, str], status: int = 200,
    ) -> Response:  # fmt: skip
        """The page again, with the notice of a change or the API's refusal
        (the form as it was sent, its policy's diagnostics placed)."""
        if answer.ok:
            return await self.page(request, viewer, status=status, notice=notice)
        found = answer.data.get("details", {}) if isinstance(answer.data, dict) else {}
        diagnostics = found.get("diagnostics") if isinstance(found, dict) else None
        checked = None
        if isinstance(diagnostics, list):
            checked = policy_editor.located(form.get("traffic_policy", ""), diagnostics)
        return await self.page(
            request, viewer, status=answer.status, error=answer.message,
            refused=Refused(target, form, checked),
        )  # fmt: skip

    async def create(self, request: Request, viewer: Viewer) -> Response:
        data = await self.console._form(request, viewer)
        form = _fields(data)
        body = {**form, "url": data.get("url", "").strip()}
        answer = await self.console._api(request, viewer, "POST", "/endpoints", body=body)
        made = answer.data if answer.ok else {}
        notice = f"Endpoint {made.get('id')} serves {made.get('url')}."
        return await self._done(request, viewer, answer, notice, target=NEW, form=body, status=201)

    async def update(self, request: Request, viewer: Viewer) -> Response:
        data = await self.console._form(request, viewer)
        id, form = request.path_params["id"], _fields(data)
        answer = await self.console._api(
            request, viewer, "PATCH", f"/endpoints/{id}", body=form,
            if_match=data.get("etag", ""),  # changed since the page was shown: 412
        )  # fmt: skip
        notice = f"Endpoint {id} is changed."
        return await self._done(request, viewer, answer, notice, target=id, form=form)

    async def delete(self, request: Request, viewer: Viewer) -> Response:
        await self.console._form(request, viewer)
        id = request.path_params["id"]
        answer = await self.console._api(request, viewer, "DELETE", f"/endpoints/{id}")
        notice = f"Endpoint {id} is deleted."
        return await self._done(request, viewer, answer, notice, target=id, form={})


def _fields(data: dict[str, str]) -> dict[str, str]:
    """The policy and description of a posted form (a textarea posts CRLF)."""
    return {
        "traffic_policy": data.get("traffic_policy", "").replace("\r\n", "\n"),
        "description": data.get("description", "").strip(),
    }


__all__ = ["EndpointPages"]
