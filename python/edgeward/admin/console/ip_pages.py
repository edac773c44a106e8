"""The console's IP policies page: policies with their rules, and the IP
restrictions that attach them to the dashboard, the API, the agent ingress
or the endpoints. Every change is the API's (`/ip_policies`,
`/ip_policy_rules`, `/ip_restrictions`), so its roles and its lockout
guard decide; a refusal is shown on the page with the API's words and
status.

    GET  /console/ip-policies                      policies, rules, restrictions
    POST /console/ip-policies                      description  → a new policy
    POST /console/ip-policies/{id}/rules           cidr, action (allow|deny), description
    POST /console/ip-policies/{id}/delete
    POST /console/ip-policy-rules/{id}/delete
    POST /console/ip-restrictions                  type, ip_policy_id, enforced (on)
                                                   → a new restriction of that type, or the
                                                   policy attached to the existing one
    POST /console/ip-restrictions/{id}/detach      ip_policy_id
    POST /console/ip-restrictions/{id}/delete

The action (allow or deny) belongs to a rule, as in the API: a policy is a
list of CIDRs each allowed or denied.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgeward.admin import resources
from edgeward.admin.console.client import Answer

if TYPE_CHECKING:
    from edgeward.admin.console.pages import Console, Viewer

HERE = "/console/ip-policies"
TITLE = "IP policies and restrictions"


class IpPages:
    def __init__(self, console: Console) -> None:
        self.console = console

    def routes(self) -> list[Route]:
        g = self.console._guard
        return [
            Route(HERE, g(self.page), methods=["GET"]),
            Route(HERE, g(self.create_policy), methods=["POST"]),
            Route(HERE + "/{id}/rules", g(self.create_rule), methods=["POST"]),
            Route(HERE + "/{id}/delete", g(self.delete_policy), methods=["POST"]),
            Route("/console/ip-policy-rules/{id}/delete", g(self.delete_rule), methods=["POST"]),
            Route("/console/ip-restrictions", g(self.attach), methods=["POST"]),
            Route("/console/ip-restrictions/{id}/detach", g(self.detach), methods=["POST"]),
            Route(
                "/console/ip-restrictions/{id}/delete", g(self.delete_restriction), methods=["POST"]
            ),
        ]

    async def page(
        self, request: Request, viewer: Viewer, *, status: int = 200, notice: str = "",
        error: str = "",
    ) -> Response:  # fmt: skip
        c = self.console
        policies = await self.console._all(request, viewer, "/ip_policies", "ip_policies")
        rules = await self.console._all(request, viewer, "/ip_policy_rules", "ip_policy_rules")
        restrictions = await self.console._all(
            request, viewer, "/ip_restrictions", "ip_restrictions"
        )
        by_policy: dict[str, list[dict[str, Any]]] = {p["id"]: [] for p in policies}
        for rule in reversed(rules):  # oldest first, as they were added
            by_policy.setdefault(rule["ip_policy"]["id"], []).append(rule)
        names = {p["id"]: p["description"] for p in policies}
        return c.render(
            "ip_policies.html", viewer, HERE, TITLE, status,
            policies=[{**p, "rules": by_policy[p["id"]]} for p in reversed(policies)],
            restrictions=sorted(restrictions, key=lambda r: str(r["type"])), names=names,
            types=("dashboard", "api", "agent", "endpoints"),
            can_write=viewer.role == "admin", notice=notice, error=error,
        )  # fmt: skip

    async def _done(
        self, request: Request, viewer: Viewer, answer: Answer, notice: Callable[[], str],
        status: int = 200,
    ) -> Response:  # fmt: skip
        """The page again, with the notice of a change or the API's refusal."""
        if answer.ok:
            return await self.page(request, viewer, status=status, notice=notice())
        return await self.page(request, viewer, status=answer.status, error=answer.message)

    def _call(
        self, request: Request, viewer: Viewer, method: str, path: str, **kwargs: Any
    ) -> Awaitable[Answer]:
        return self.console._api(request, viewer, method, path, **kwargs)

    async def create_policy(self, request: Request, viewer: Viewer) -> Response:
        data = await self.console._form(request, viewer)
        body = {"description": data.get("description", "").strip()}
        answer = await self._call(request, viewer, "POST", "/ip_policies", body=body)
        return await self._done(
            request, viewer, answer, lambda: f"IP policy {answer.data['id']} is created.", 201
        )

    async def create_rule(self, request: Request, viewer: Viewer) -> Response:
        data = await self.console._form(request, viewer)
        body = {
            "ip_policy_id": request.path_params["id"],
            "cidr": data.get("cidr", "").strip(),
            "action": data.get("action", ""),
            "description": data.get("description", "").strip(),
        }
        answer = await self._call(request, viewer, "POST", "/ip_policy_rules", body=body)
        return await self._done(
            request, viewer, answer,
            lambda: f"Rule {answer.data['id']}: {answer.data['action']} {answer.data['cidr']}.",
            201,
        )  # fmt: skip

    async def delete_policy(self, request: Request, viewer: Viewer) -> Response:
        await self.console._form(request, viewer)
        id = request.path_params["id"]
        answer = await self._call(request, viewer, "DELETE", f"/ip_policies/{id}")
        return await self._done(request, viewer, answer, lambda: f"IP policy {id} is deleted.")

    async def delete_rule(self, request: Request, viewer: Viewer) -> Response:
        await self.console._form(request, viewer)
        id = request.path_params["id"]
        answer = await self._call(request, viewer, "DELETE", f"/ip_policy_rules/{id}")
        return await self._done(request, viewer, answer, lambda: f"Rule {id} is deleted.")

    async def attach(self, request: Request, viewer: Viewer) -> Response:
        """A new restriction of the type, or the policy added to the one
        there is (one restriction per type); `enforced` is the checkbox's."""
        data = await self.console._form(request, viewer)
        kind, policy = data.get("type", ""), data.get("ip_policy_id", "").strip()
        enforced = data.get("enforced") == "on"
        restrictions = await self.console._all(
            request, viewer, "/ip_restrictions", "ip_restrictions"
        )
        existing = [r for r in restrictions if r["type"] == kind]
        if not existing:
            body = {"type": kind, "ip_policy_ids": [policy], "enforced": enforced}
            answer = await self._call(request, viewer, "POST", "/ip_restrictions", body=body)
            return await self._done(
                request, viewer, answer,
                lambda: f"IP restriction {answer.data['id']} ({kind}) is created with {policy}.",
                201,
            )  # fmt: skip
        current = existing[0]
        ids = [p["id"] for p in current["ip_policies"]]
        body = {"ip_policy_ids": [*ids, policy], "enforced": enforced}
        answer = await self._call(
            request, viewer, "PATCH", f"/ip_restrictions/{current['id']}", body=body,
            if_match=resources.etag(current),  # a change made meanwhile is not lost: 412
        )  # fmt: skip
        return await self._done(
            request, viewer, answer,
            lambda: f"IP restriction {current['id']} ({kind}) now has {policy}"
            f" ({'enforced' if enforced else 'not enforced'}).",
        )  # fmt: skip

    async def detach(self, request: Request, viewer: Viewer) -> Response:
        data = await self.console._form(request, viewer)
        id, policy = request.path_params["id"], data.get("ip_policy_id", "")
        found = await self._call(request, viewer, "GET", f"/ip_restrictions/{id}")
        if not found.ok:
            return await self.page(request, viewer, status=found.status, error=found.message)
        ids = [p["id"] for p in found.data["ip_policies"] if p["id"] != policy]
        answer = await self._call(
            request, viewer, "PATCH", f"/ip_restrictions/{id}", body={"ip_policy_ids": ids},
            if_match=resources.etag(found.data),
        )  # fmt: skip
        return await self._done(
            request, viewer, answer, lambda: f"IP policy {policy} is detached from {id}."
        )

    async def delete_restriction(self, request: Request, viewer: Viewer) -> Response:
        await self.console._form(request, viewer)
        id = request.path_params["id"]
        answer = await self._call(request, viewer, "DELETE", f"/ip_restrictions/{id}")
        return await self._done(request, viewer, answer, lambda: f"IP restriction {id} is deleted.")


__all__ = ["IpPages"]
