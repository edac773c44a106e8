"""`/ip_policies`, `/ip_policy_rules` and `/ip_restrictions`, shaped like
the public API's; `check`, which enforces the `api` restriction on every
request; and `dashboard_only`, which puts the console and its sign-in
pages behind the `dashboard` restriction.

A restriction attaches IP policies to `dashboard`, `api`, `agent` or
`endpoints` (one per type). Admins write; developers and auditors read.
A change that would deny the caller's own address access to the API (or,
signed in on the web, to the console) is refused (409 `ERR_EDGEWARD_4121`)
unless sent with `?force=true`. A policy still attached to a restriction
cannot be deleted (409).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from edgeward.admin.control_base import (
    Rows,
    admin_only,
    client_ip,
    described,
    described_shape,
    lockout_guard,
)
from edgeward.admin.errors import IP_RESTRICTED, ApiError, conflict, invalid
from edgeward.admin.resources import ref
from edgeward.admin.sso.pages import SECURITY_HEADERS, page
from edgeward.control import RESTRICTION_TYPES, RuleError, check_cidr, new_id
from edgeward.control.restrictions import ACTIONS
from edgeward.store import ApiKeyRow, Connection
from edgeward.store import control_rows as rows

if TYPE_CHECKING:
    from edgeward.admin.app import AdminApi

log = logging.getLogger("edgeward.admin")
Endpoint = Callable[[Request], Awaitable[Response]]


def ip_policy(base: str, row: rows.IpPolicyRow) -> dict[str, Any]:
    return described_shape(base, "ip_policies", row)


def ip_policy_rule(base: str, row: rows.IpPolicyRuleRow) -> dict[str, Any]:
    return {
        **described_shape(base, "ip_policy_rules", row),
        "cidr": row.cidr,
        "ip_policy": ref(base, "ip_policies", row.ip_policy_id),
        "action": row.action,
    }


def ip_restriction(base: str, row: rows.IpRestrictionRow) -> dict[str, Any]:
    return {
        **described_shape(base, "ip_restrictions", row),
        "enforced": row.enforced,
        "type": row.type,
        "ip_policies": [ref(base, "ip_policies", p) for p in row.ip_policy_ids],
    }


def check(api: AdminApi, request: Request, type: str = "api") -> None:
    """Refuse a request from an address the `type` restriction denies (403
    `ERR_EDGEWARD_4120`, before the API key is even looked at); one that is
    not enforced is let in with a warning."""
    address = client_ip(request)
    allowed, restriction = api.dataplane.control().restrictions.verdict(type, address)
    if allowed or restriction is None:
        return
    if not restriction.enforced:
        log.warning(
            "admin API: %s is not allowed by IP restriction %s (not enforced: let in)",
            address,
            restriction.id,
        )
        return
    raise ApiError(
        403,
        IP_RESTRICTED,
        f"your address {address} is not allowed to use the {type} (IP restriction"
        f" {restriction.id})",
    )


def dashboard_only(api: AdminApi, routes: list[Route]) -> list[Route]:
    """`routes` (the console and its sign-in pages) answering a browser
    from an address the `dashboard` restriction denies with a plain 403
    page, before anything else runs (no session is looked at)."""

    def gated(endpoint: Callable[[Request], Awaitable[Response]]) -> Endpoint:
        async def gate(request: Request) -> Response:
            try:
                check(api, request, "dashboard")
            except ApiError as refused:
                log.warning("admin console: %s", refused.msg)
                address = client_ip(request)
                text = (
                    f"Your address {address} is not allowed to use the edgeward console"
                    " (an IP restriction of the dashboard). Ask an administrator."
                )
                response = HTMLResponse(page("Not allowed", text), status_code=403)
                for name, value in SECURITY_HEADERS.items():
                    response.headers[name] = value
                return response
            return await endpoint(request)

        return gate

    return [
        Route(r.path, gated(r.endpoint), methods=sorted(r.methods or ()), name=r.name)
        for r in routes
    ]


def _now() -> datetime:
    return datetime.now(UTC)


def _cidr(data: dict[str, Any]) -> str | None:
    value = data.get("cidr")
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid("cidr must be a string", "cidr")
    try:
        return check_cidr(value)
    except RuleError as exc:
        raise invalid(f"cidr: {exc}", "cidr") from None


def _policy_ids(conn: Connection, data: dict[str, Any]) -> tuple[str, ...] | None:
    value = data.get("ip_policy_ids")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid("ip_policy_ids must be a list of strings", "ip_policy_ids")
    if not value:
        raise invalid("ip_policy_ids: a restriction needs at least one IP policy", "ip_policy_ids")
    for id in value:
        if rows.get(conn, rows.IpPolicyRow, id) is None:
            raise invalid(f"ip_policy_ids: no IP policy {id!r}", "ip_policy_ids")
    return tuple(dict.fromkeys(value))


def routes(api: AdminApi) -> list[Route]:
    policies = Rows(api, rows.IpPolicyRow, "ip_policies", "IP policy", ip_policy)
    rules = Rows(api, rows.IpPolicyRuleRow, "ip_policy_rules", "IP policy rule", ip_policy_rule)
    restrictions = Rows(
        api, rows.IpRestrictionRow, "ip_restrictions", "IP restriction", ip_restriction
    )

    # --- ip_policies ----------------------------------------------------------------------

    async def create_policy(request: Request, key: ApiKeyRow) -> Response:
        admin_only(key, "IP policies")
        data = await api._body(request, {"description", "metadata"})
        text = described(data, create=True)
        row = rows.IpPolicyRow(
            new_id("ipp"), text["description"] or "", text["metadata"] or "", _now()
        )
        await policies.write(lambda conn: rows.add(conn, row))
        shown = ip_policy(api._base(request), row)
        api._emit("ip_policy_created.v0", shown, key)
        return api._json(shown, 201)

    async def update_policy(request: Request, key: ApiKeyRow) -> Response:
        admin_only(key, "IP policies")
        id = request.path_params["id"]
        text = described(await api._body(request, {"description", "metadata"}), create=False)

        def change(conn: Connection) -> rows.IpPolicyRow:
            policies.current(conn, request, id)
            changed = rows.change(conn, rows.IpPolicyRow, id, **text)
            assert changed is not None
            return changed

        shown = ip_policy(api._base(request), await policies.write(change))
        api._emit("ip_policy_updated.v0", shown, key)
        return api._json(shown)

    async def delete_policy(request: Request, key: ApiKeyRow) -> Response:
        admin_only(key, "IP policies")
        id = request.path_params["id"]

        def remove(conn: Connection) -> rows.IpPolicyRow:
            row: rows.IpPolicyRow = policies.current(conn, request, id)
            users = [
                r.id for r in rows.select_all(conn, rows.IpRestrictionRow) if id in r.ip_policy_ids
            ]
            if users:
                raise conflict(
                    f"IP policy {id!r} is attached to IP restriction(s) {', '.join(users)}:"
                    " detach it first"
                )
            rows.remove(conn, rows.IpPolicyRow, id)
            return row

        row = await policies.write(remove)
        api._emit("ip_policy_deleted.v0", ip_policy(api._base(request), row), key)
        return Response(status_code=204)

    # --- ip_policy_rules --------------------------------------------------------------------

    async def create_rule(request: Request, key: ApiKeyRow) -> Response:
        admin_only(key, "IP policy rules")
        data = await api._body(
            request, {"description", "metadata", "cidr", "ip_policy_id", "action"}
        )
        text = described(data, create=True)
        cidr = _cidr(data)
        if cidr is None:
            raise invalid("cidr is required", "cidr")
        action = data.get("action")
        if action not in ACTIONS:
            raise invalid("action must be allow or deny", "action")
        policy_id = api._text(data, "ip_policy_id")
        if not policy_id:
            raise invalid("ip_policy_id is required", "ip_policy_id")
        row = rows.IpPolicyRuleRow(
            new_id("ipr"),
            policy_id,
            cidr,
            action,
            text["description"] or "",
            text["metadata"] or "",
            _now(),
        )

        def add(conn: Connection) -> None:
            if rows.get(conn, rows.IpPolicyRow, policy_id) is None:
                raise invalid(f"ip_policy_id: no IP policy {policy_id!r}", "ip_policy_id")
            _unique_cidr(conn, policy_id, cidr, None)
            rows.add(conn, row)
            lockout_guard(conn, request)

        await rules.write(add)
        shown = ip_policy_rule(api._base(request), row)
        api._emit("ip_policy_rule_created.v0", shown, key)
        return api._json(shown, 201)

    async def update_rule(request: Request, key: ApiKeyRow) -> Response:
        admin_only(key, "IP policy rules")
        id = request.path_params["id"]
        data = await api._body(request, {"description", "metadata", "cidr"})
        text = described(data, create=False)
        cidr = _cidr(data)

        def change(conn: Connection) -> rows.IpPolicyRuleRow:
            current: rows.IpPolicyRuleRow = rules.current(conn, request, id)
            if cidr is not None:
                _unique_cidr(conn, current.ip_policy_id, cidr, id)
            changed = rows.change(conn, rows.IpPolicyRuleRow, id, cidr=cidr, **text)
            assert changed is not None
            lockout_guard(conn, request)
            return changed

        shown = ip_policy_rule(api._base(request), await rules.write(change))
        api._emit("ip_policy_rule_updated.v0", shown, key)
        return api._json(shown)

    async def delete_rule(request: Request, key: ApiKeyRow) -> Response:
        admin_only(key, "IP policy rules")
        id = request.path_params["id"]

        def remove(conn: Connection) -> rows.IpPolicyRuleRow:
            row: rows.IpPolicyRuleRow = rules.current(conn, request, id)
            rows.remove(conn, rows.IpPolicyRuleRow, id)
            lockout_guard(conn, request)
            return row

        row = await rules.write(remove)
        api._emit("ip_policy_rule_deleted.v0", ip_policy_rule(api._base(request), row), key)
        return Response(status_code=204)

    # --- ip_restrictions --------------------------------------------------------------------

    def _enforced(data: dict[str, Any]) -> bool | None:
        value = data.get("enforced")
        if value is not None and not isinstance(value, bool):
            raise invalid("enforced must be true or false", "enforced")
        return value

    async def create_restriction(request: Request, key: ApiKeyRow) -> Response:
        admin_only(key, "IP restrictions")
        data = await api._body(
            request, {"description", "metadata", "enforced", "type", "ip_policy_ids"}
        )
        text = described(data, create=True)
        kind = data.get("type")
        if kind not in RESTRICTION_TYPES:
            raise invalid(f"type must be one of {', '.join(RESTRICTION_TYPES)}", "type")
        enforced = _enforced(data)

        def add(conn: Connection) -> rows.IpRestrictionRow:
            ids = _policy_ids(conn, data)
            if ids is None:
                raise invalid("ip_policy_ids is required (at least one)", "ip_policy_ids")
            taken = [r for r in rows.select_all(conn, rows.IpRestrictionRow) if r.type == kind]
            if taken:
                raise conflict(
                    f"there is already an IP restriction of type {kind}: {taken[0].id}", "type"
                )
            row = rows.IpRestrictionRow(
                new_id("ipx"),
                str(kind),
                True if enforced is None else enforced,
                ids,
                text["description"] or "",
                text["metadata"] or "",
                _now(),
            )
            rows.add(conn, row)
            lockout_guard(conn, request)
            return row

        shown = ip_restriction(api._base(request), await restrictions.write(add))
        api._emit("ip_restriction_created.v0", shown, key)
        return api._json(shown, 201)

    async def update_restriction(request: Request, key: ApiKeyRow) -> Response:
        admin_only(key, "IP restrictions")
        id = request.path_params["id"]
        data = await api._body(request, {"description", "metadata", "enforced", "ip_policy_ids"})
        text = described(data, create=False)
        enforced = _enforced(data)

        def change(conn: Connection) -> rows.IpRestrictionRow:
            restrictions.current(conn, request, id)
            ids = _policy_ids(conn, data)
            changed = rows.change(
                conn, rows.IpRestrictionRow, id, enforced=enforced, ip_policy_ids=ids, **text
            )
            assert changed is not None
            lockout_guard(conn, request)
            return changed

        shown = ip_restriction(api._base(request), await restrictions.write(change))
        api._emit("ip_restriction_updated.v0", shown, key)
        return api._json(shown)

    async def delete_restriction(request: Request, key: ApiKeyRow) -> Response:
        admin_only(key, "IP restrictions")
        id = request.path_params["id"]

        def remove(conn: Connection) -> rows.IpRestrictionRow:
            row: rows.IpRestrictionRow = restrictions.current(conn, request, id)
            rows.remove(conn, rows.IpRestrictionRow, id)
            return row

        row = await restrictions.write(remove)
        api._emit("ip_restriction_deleted.v0", ip_restriction(api._base(request), row), key)
        return Response(status_code=204)

    return [
        *policies.routes(create=create_policy, update=update_policy, delete=delete_policy),
        *rules.routes(create=create_rule, update=update_rule, delete=delete_rule),
        *restrictions.routes(
            create=create_restriction, update=update_restriction, delete=delete_restriction
        ),
    ]


def _unique_cidr(conn: Connection, policy_id: str, cidr: str, id: str | None) -> None:
    for rule in rows.select_all(conn, rows.IpPolicyRuleRow, ip_policy_id=policy_id):
        if rule.cidr == cidr and rule.id != id:
            raise conflict(f"IP policy {policy_id!r} already has a rule for {cidr}", "cidr")


__all__ = ["check", "dashboard_only", "ip_policy", "ip_policy_rule", "ip_restriction", "routes"]
