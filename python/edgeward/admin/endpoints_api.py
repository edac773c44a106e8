"""`/endpoints` (static, agent and cloud) and `/agent_ingresses`.

Endpoints of three kinds: `static` (edge.yml's: read-only here, the config
file is theirs), `agent` (bound by agents: read-only, they go with their
session) and `cloud` (made through this API and kept in the store: a URL
and a traffic policy). Creating or changing a cloud endpoint compiles its
policy as the edge will (the diagnostics and locations of `edgeward policy
check`; a policy with errors is 400 `ERR_EDGEWARD_4123` listing them in
`details.diagnostics`); the edge's watcher serves the new version within
about 250 ms, without a restart.

Every endpoint has a traffic inspector setting, `inspect` (`inspector_api`):
its owner (a developer, for its agents' endpoints) or an admin sets it with
`PATCH /endpoints/{id}` and `{"inspect": {...}}`, on any kind of endpoint.

`/agent_ingresses` shows the one agent ingress of edge.yml, read-only: its
address and TLS certificates are bound at start (a reload cannot move
them), so there is nothing the API could change at run time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgeward.admin import inspector_api, resources
from edgeward.admin.control_base import Rows, admin_only, described
from edgeward.admin.errors import POLICY, ApiError, conflict, invalid, not_found
from edgeward.control import load, new_id
from edgeward.control.endpoints import UrlError, conflicts, parse_url
from edgeward.store import ApiKeyRow, Connection
from edgeward.store import control_rows as rows

if TYPE_CHECKING:
    from edgeward.admin.app import AdminApi

STATIC_ID = "cfg_"
INGRESS_ID = "agi_edge"


def cloud_endpoint(base: str, row: rows.CloudEndpointRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "uri": f"{base}/endpoints/{row.id}",
        "type": "cloud",
        "name": row.url,
        "url": row.url,
        "urls": [row.url],
        "proto": row.url.partition(":")[0],
        "hostport": None,
        "bindings": ["public"],
        "traffic_policy": row.traffic_policy,
        "metadata": row.metadata,
        "online": True,
        "pooling_enabled": False,
        "credential": None,
        "tunnel_sessions": [],
        "description": row.description,
        "created_at": resources.timestamp(row.created_at),
    }


async def listed(api: AdminApi, request: Request, key: ApiKeyRow) -> list[dict[str, Any]]:
    """The endpoints `key` sees (a developer: its own agents' only), each
    with its traffic inspector setting (`inspect`)."""
    base = api._base(request)
    owned = await api._owned(key)
    items: list[dict[str, Any]] = []
    registry = api.dataplane.registry()
    if registry is not None:
        for published in reversed(list(registry.endpoints())):
            if owned is None or published.authtoken_id in owned:
                items.append(resources.agent_endpoint(base, published))
    clouds = Rows(api, rows.CloudEndpointRow, "endpoints", "endpoint", cloud_endpoint)
    if owned is None:
        made = sorted(await clouds.all(), key=lambda r: (r.created_at, r.id), reverse=True)
        items += [cloud_endpoint(base, r) for r in made]
        config = api.dataplane.config()
        items += [resources.static_endpoint(base, config, e) for e in config.endpoints]
    settings = await inspector_api.settings(api)
    for item in items:
        item["inspect"] = inspector_api.inspect_shape(settings.get(item["id"]))
    return items


async def visible(api: AdminApi, request: Request, key: ApiKeyRow, id: str) -> dict[str, Any]:
    """The endpoint `id` as `key` sees it; 404 when it does not (another
    developer's is not found, as the API answers for every resource)."""
    for item in await listed(api, request, key):
        if item["id"] == id:
            return item
    raise not_found("endpoint", id)


def routes(api: AdminApi) -> list[Route]:
    clouds = Rows(api, rows.CloudEndpointRow, "endpoints", "endpoint", cloud_endpoint)

    async def list_endpoints(request: Request, key: ApiKeyRow) -> Response:
        items = await listed(api, request, key)
        return api._json(
            resources.page(api._base(request), "endpoints", items, dict(request.query_params)),
            tagged=False,
        )

    async def get_endpoint(request: Request, key: ApiKeyRow) -> Response:
        return api._json(await visible(api, request, key, request.path_params["id"]))

    def read_only(id: str) -> None:
        if id.startswith(STATIC_ID):
            raise invalid(f"endpoint {id!r} comes from the edge config: change it there")
        if not id.startswith("ep_"):
            raise not_found("endpoint", id)

    async def checked(data: dict[str, Any], id: str | None, current: str | None) -> tuple[str, str]:
        """The URL and policy of a create or change, refused unless the edge
        can serve them; `current` is the URL kept when none is given."""
        url_text = api._text(data, "url") or current
        if not url_text:
            raise invalid("url is required", "url")
        config = api.dataplane.config()
        try:
            url = parse_url(url_text, config)
        except UrlError as exc:
            raise invalid(f"url: {exc}", "url") from None
        policy = api._text(data, "traffic_policy")
        snapshot = await api._run(load)
        taken = conflicts(url, config, list(snapshot.endpoints), id)
        if taken is not None:
            raise conflict(f"url: {url_text} is already served by {taken}", "url")
        if policy is not None:
            problems = api.dataplane.check_policy(policy, snapshot.vaults)
            errors = [p for p in problems if p.severity == "error"]
            if errors:
                raise ApiError(
                    400,
                    POLICY,
                    f"the traffic policy has {len(errors)} error(s): {errors[0].text}",
                    field="traffic_policy",
                    diagnostics=[
                        {
                            "severity": p.severity,
                            "message": p.message,
                            "line": p.line,
                            "column": p.column,
                            "path": p.path,
                            "text": p.text,
                        }
                        for p in problems
                    ],
                )
        return url_text, policy if policy is not None else ""

    async def create_endpoint(request: Request, key: ApiKeyRow) -> Response:
        admin_only(key, "endpoints")
        data = await api._body(
            request, {"url", "type", "traffic_policy", "description", "metadata", "bindings"}
        )
        if data.get("type", "cloud") != "cloud":
            raise invalid("type: only cloud endpoints are made through the API", "type")
        if data.get("bindings", ["public"]) != ["public"]:
            raise invalid('bindings: cloud endpoints are ["public"]', "bindings")
        if api._text(data, "traffic_policy") is None:
            raise invalid("traffic_policy is required", "traffic_policy")
        text = described(data, create=True)
        url, policy = await checked(data, None, None)
        row = rows.CloudEndpointRow(
            new_id("ep"),
            url,
            policy,
            text["description"] or "",
            text["metadata"] or "",
            datetime.now(UTC),
        )

        def add(conn: Connection) -> None:
            if any(r.url == url for r in rows.select_all(conn, rows.CloudEndpointRow)):
                raise conflict(f"url: there is already an endpoint for {url}", "url")
            rows.add(conn, row)

        await clouds.write(add)
        shown = cloud_endpoint(api._base(request), row)
        shown["inspect"] = inspector_api.inspect_shape(None)
        api._emit("endpoint_created.v0", shown, key)
        return api._json(shown, 201)

    async def update_endpoint(request: Request, key: ApiKeyRow) -> Response:
        id = request.path_params["id"]
        data = await api._body(
            request, {"url", "traffic_policy", "description", "metadata", "inspect"}
        )
        inspection = None
        if "inspect" in data:  # any endpoint, by its owner or an admin (inspector_api)
            inspection = await inspector_api.checked(api, request, key, id, data.pop("inspect"))
            if not data:
                await inspector_api.store(api, key, inspection)
                return api._json(await visible(api, request, key, id))
        admin_only(key, "endpoints")
        read_only(id)
        text = described(data, create=False)
        before: rows.CloudEndpointRow = await clouds.one(id)
        url, policy = await checked(data, id, before.url)

        def change(conn: Connection) -> rows.CloudEndpointRow:
            clouds.current(conn, request, id)
            changed = rows.change(
                conn,
                rows.CloudEndpointRow,
                id,
                url=url,
                traffic_policy=policy if "traffic_policy" in data else None,
                **text,
            )
            assert changed is not None
            return changed

        shown = cloud_endpoint(api._base(request), await clouds.write(change))
        if inspection is not None:  # with the rest of the change, once it passed
            await inspector_api.store(api, key, inspection)
        shown["inspect"] = inspector_api.inspect_shape((await inspector_api.settings(api)).get(id))
        api._emit("endpoint_updated.v0", shown, key)
        return api._json(shown)

    async def delete_endpoint(request: Request, key: ApiKeyRow) -> Response:
        admin_only(key, "endpoints")
        id = request.path_params["id"]
        read_only(id)

        def remove(conn: Connection) -> rows.CloudEndpointRow:
            row: rows.CloudEndpointRow = clouds.current(conn, request, id)
            rows.remove(conn, rows.CloudEndpointRow, id)
            rows.remove(conn, rows.InspectionRow, id)  # its captures go with the endpoint
            return row

        row = await clouds.write(remove)
        api._emit("endpoint_deleted.v0", cloud_endpoint(api._base(request), row), key)
        return Response(status_code=204)

    # --- agent_ingresses ------------------------------------------------------------------

    def ingresses(request: Request) -> list[dict[str, Any]]:
        ingress = api.dataplane.config().agent_ingress
        if ingress is None:
            return []
        host, port = api.dataplane.ingress_address() or (ingress.host, ingress.port)
        base = api._base(request)
        return [
            {
                "id": INGRESS_ID,
                "uri": f"{base}/agent_ingresses/{INGRESS_ID}",
                "description": "the agent ingress of the edge config (read-only)",
                "metadata": "",
                "domain": f"{host}:{port}",
                "ns_targets": [],
                "region_domains": [],
                "created_at": None,
                "certificate_management_policy": None,
                "certificate_management_status": None,
                "domains": list(ingress.domains),
                "listeners": list(ingress.listeners),
            }
        ]

    async def list_ingresses(request: Request, key: ApiKeyRow) -> Response:
        base = api._base(request)
        return api._json(
            resources.page(base, "agent_ingresses", ingresses(request), dict(request.query_params)),
            tagged=False,
        )

    async def get_ingress(request: Request, key: ApiKeyRow) -> Response:
        id = request.path_params["id"]
        for item in ingresses(request):
            if item["id"] == id:
                return api._json(item)
        raise not_found("agent ingress", id)

    return [
        Route("/endpoints", api._wrap(list_endpoints), methods=["GET"]),
        Route("/endpoints", api._wrap(create_endpoint, write=True), methods=["POST"]),
        Route("/endpoints/{id}", api._wrap(get_endpoint), methods=["GET"]),
        Route("/endpoints/{id}", api._wrap(update_endpoint, write=True), methods=["PATCH"]),
        Route("/endpoints/{id}", api._wrap(delete_endpoint, write=True), methods=["DELETE"]),
        Route("/agent_ingresses", api._wrap(list_ingresses), methods=["GET"]),
        Route("/agent_ingresses/{id}", api._wrap(get_ingress), methods=["GET"]),
    ]


__all__ = ["cloud_endpoint", "listed", "routes", "visible"]
