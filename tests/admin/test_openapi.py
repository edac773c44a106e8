"""The OpenAPI document against the implementation: it is a valid OpenAPI
3.1 document, it documents exactly the routes the application has, and the
live API's answers (successes and errors, with an agent online) validate
against it with openapi-core."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_spec_validator import validate
from starlette.routing import Route
from tests.admin.admin_support import ApiEdge
from tests.agents.agents_support import Token
from tests.agents.test_agent_http import named_server

from edgeward.admin.app import AdminApi
from edgeward.admin.openapi import document

METHODS = {"GET", "POST", "PATCH", "DELETE", "PUT"}


def test_the_document_is_valid_openapi() -> None:
    validate(document())


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    app = AdminApi(None, None, None).app  # type: ignore[arg-type]  # routes only
    implemented = {
        (route.path, method)
        for route in app.routes
        if isinstance(route, Route)
        for method in (route.methods or set()) & METHODS
    }
    documented = {
        (path, method.upper())
        for path, item in document()["paths"].items()
        for method in item
        if method.upper() in METHODS
    }
    assert implemented == documented


class Checker:
    """Sends requests through httpx and validates request and answer."""

    def __init__(self, edge: ApiEdge, spec: dict[str, Any]) -> None:
        self.edge = edge
        self.openapi = OpenAPI.from_dict(spec)
        self.seen: set[tuple[str, int]] = set()

    def __call__(
        self, client: httpx.Client, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        answer = client.request(method, path, **kwargs)
        url = urlsplit(str(answer.request.url))
        query = dict(httpx.QueryParams(url.query))
        request = MockRequest(
            f"{url.scheme}://{url.netloc}",
            method.lower(),
            url.path,
            args=query,
            headers=dict(answer.request.headers),
            data=answer.request.content or None,
        )
        response = MockResponse(
            answer.content,
            status_code=answer.status_code,
            headers=dict(answer.headers),
            content_type=answer.headers.get("content-type", "").split(";")[0],
        )
        if answer.status_code < 400:
            self.openapi.validate_request(request)
        self.openapi.validate_response(request, response)
        self.seen.add((method, answer.status_code))
        return answer


def test_live_answers_validate_against_the_document(edge: ApiEdge) -> None:
    with httpx.Client(base_url=edge.url, timeout=30) as anonymous:
        spec = anonymous.get("/openapi.json").json()
    assert spec == document()
    check = Checker(edge, spec)
    admin, auditor = edge.key("admin"), edge.key("auditor")
    with edge.client(admin) as api, edge.client(auditor) as reader, edge.client(None) as nobody:
        made = check(api, "POST", "/credentials", json={"acl": ["bind:*.apps.example.com"]})
        assert made.status_code == 201
        cid = made.json()["id"]
        check(api, "GET", "/credentials")
        check(api, "GET", "/credentials", params={"limit": "1"})
        tag = check(api, "GET", f"/credentials/{cid}").headers["etag"]
        check(
            api, "PATCH", f"/credentials/{cid}", json={"metadata": "m"}, headers={"If-Match": tag}
        )
        assert (
            check(
                api, "PATCH", f"/credentials/{cid}", json={}, headers={"If-Match": tag}
            ).status_code
            == 412
        )
        key = check(
            api, "POST", "/api_keys", json={"role": "developer", "acl": ["bind:x.internal"]}
        )
        kid = key.json()["id"]
        check(api, "GET", "/api_keys")
        check(api, "GET", f"/api_keys/{kid}")
        check(api, "PATCH", f"/api_keys/{kid}", json={"description": "d"})
        token = Token(cid, made.json()["token"])
        with named_server(b"o") as port:
            agent = edge.agents.agent(
                token, "http", str(port), "--url", "http://o.apps.example.com"
            )
            try:
                agent.url  # noqa: B018
                sessions = check(api, "GET", "/tunnel_sessions").json()["tunnel_sessions"]
                sid = next(s["id"] for s in sessions if s["credential"]["id"] == cid)
                check(api, "GET", f"/tunnel_sessions/{sid}")
                endpoints = check(api, "GET", "/endpoints").json()["endpoints"]
                assert {e["type"] for e in endpoints} == {"static", "agent"}
                for endpoint in endpoints:
                    check(reader, "GET", f"/endpoints/{endpoint['id']}")
                check(api, "POST", f"/tunnel_sessions/{sid}/stop")
            finally:
                agent.kill()
        check(reader, "DELETE", f"/api_keys/{kid}")  # 403
        check(api, "DELETE", f"/api_keys/{kid}")
        check(api, "DELETE", f"/credentials/{cid}")
        check(api, "GET", "/credentials/at_aaaaaaaaaaaaaaaa")  # 404
        check(api, "GET", "/tunnel_sessions/ses_nope")  # 404
        check(api, "GET", "/endpoints/ep_nope")  # 404
        check(api, "POST", "/credentials", json={"acl": ["nope"]})  # 400
        check(api, "GET", "/credentials", headers={"Ngrok-Version": "1"})  # 400
        target = {"http": {"url": "http://127.0.0.1:9/hec", "shape": "hec", "token": "t"}}
        dest = check(api, "POST", "/event_destinations", json={"target": target}).json()
        check(api, "GET", "/event_destinations")
        tag = check(reader, "GET", f"/event_destinations/{dest['id']}").headers["etag"]
        check(
            api,
            "PATCH",
            f"/event_destinations/{dest['id']}",
            json={"format": "ocsf"},
            headers={"If-Match": tag},
        )
        body = {"sources": [{"type": "credential_*"}], "destination_ids": [dest["id"]]}
        sub = check(api, "POST", "/event_subscriptions", json=body).json()
        check(api, "GET", "/event_subscriptions")
        check(reader, "GET", f"/event_subscriptions/{sub['id']}")
        check(api, "PATCH", f"/event_subscriptions/{sub['id']}", json={"filter": "true"})
        check(api, "POST", "/event_subscriptions", json={**body, "filter": "object.x =="})  # 400
        check(api, "DELETE", f"/event_subscriptions/{sub['id']}")
        check(api, "DELETE", f"/event_destinations/{dest['id']}")
        check(api, "GET", f"/event_destinations/{dest['id']}")  # 404
        check(nobody, "GET", "/credentials")  # 401
    assert {status for _, status in check.seen} >= {200, 201, 204, 400, 401, 403, 404, 412}


def test_the_control_plane_answers_validate_against_the_document(edge: ApiEdge) -> None:
    """IP policies, rules and restrictions, cloud endpoints, agent ingresses,
    vaults and secrets: every operation, successes and errors (409, 400 with
    policy diagnostics) validated by openapi-core."""
    check = Checker(edge, document())
    admin, auditor = edge.key("admin"), edge.key("auditor")
    port = edge.agents.web_port
    policy_text = (
        "on_http_request:\n  - actions:\n      - type: custom-response\n"
        "        config: {status_code: 200, body: ok}\n"
    )
    with edge.client(admin) as api, edge.client(auditor) as reader:
        ipp = check(api, "POST", "/ip_policies", json={"description": "d"}).json()["id"]
        check(api, "GET", "/ip_policies")
        tag = check(api, "GET", f"/ip_policies/{ipp}").headers["etag"]
        check(
            api, "PATCH", f"/ip_policies/{ipp}", json={"metadata": "m"}, headers={"If-Match": tag}
        )
        rule = {"ip_policy_id": ipp, "action": "allow", "cidr": "127.0.0.0/8"}
        ipr = check(api, "POST", "/ip_policy_rules", json=rule).json()["id"]
        check(api, "POST", "/ip_policy_rules", json=rule)  # 409: the same CIDR
        check(api, "GET", "/ip_policy_rules")
        check(api, "GET", f"/ip_policy_rules/{ipr}")
        check(api, "PATCH", f"/ip_policy_rules/{ipr}", json={"cidr": "127.0.0.0/16"})
        restriction = {"type": "api", "ip_policy_ids": [ipp], "enforced": False}
        ipx = check(api, "POST", "/ip_restrictions", json=restriction).json()["id"]
        check(api, "GET", "/ip_restrictions")
        check(api, "GET", f"/ip_restrictions/{ipx}")
        check(api, "PATCH", f"/ip_restrictions/{ipx}", json={"enforced": True})
        check(api, "DELETE", f"/ip_policies/{ipp}")  # 409: attached
        check(api, "DELETE", f"/ip_restrictions/{ipx}")
        check(api, "DELETE", f"/ip_policy_rules/{ipr}", params={"force": "false"})
        check(api, "DELETE", f"/ip_policies/{ipp}")

        vault = check(api, "POST", "/vaults", json={"name": "v1"}).json()["id"]
        check(api, "GET", "/vaults")
        check(api, "GET", f"/vaults/{vault}")
        check(api, "PATCH", f"/vaults/{vault}", json={"description": "d"})
        secret = {"vault_id": vault, "name": "s", "value": "x"}
        sec = check(api, "POST", "/secrets", json=secret).json()["id"]
        check(api, "GET", "/secrets")
        check(reader, "GET", f"/secrets/{sec}")
        check(api, "GET", f"/vaults/{vault}/secrets")
        check(api, "PATCH", f"/secrets/{sec}", json={"value": "y"})
        check(api, "DELETE", f"/secrets/{sec}")
        check(api, "DELETE", f"/vaults/{vault}")

        url = f"http://oa.example.com:{port}"
        check(api, "POST", "/endpoints", json={"url": url, "traffic_policy": "on_http_request: 3"})
        ep = check(api, "POST", "/endpoints", json={"url": url, "traffic_policy": policy_text})
        eid = ep.json()["id"]
        check(api, "GET", "/endpoints")
        check(reader, "GET", f"/endpoints/{eid}")
        check(api, "PATCH", f"/endpoints/{eid}", json={"description": "d"})
        check(api, "DELETE", f"/endpoints/{eid}")

        (ingress,) = check(api, "GET", "/agent_ingresses").json()["agent_ingresses"]
        check(api, "GET", f"/agent_ingresses/{ingress['id']}")
    assert {status for _, status in check.seen} >= {200, 201, 204, 400, 409}


def test_users_and_invitations_validate_against_the_document(edge: ApiEdge) -> None:
    check = Checker(edge, document())
    admin, auditor, developer = edge.key("admin"), edge.key("auditor"), edge.key("developer")
    with (
        edge.client(admin) as api,
        edge.client(auditor) as reader,
        edge.client(developer) as dev,
    ):
        made = check(
            api,
            "POST",
            "/invitations",
            json={
                "email": "Dana@Example.com",
                "role": "developer",
                "acl": ["bind:*.dana.internal"],
            },
        )
        assert made.status_code == 201
        shown = made.json()
        assert shown["email"] == "dana@example.com" and "/invite/ewi_" in shown["url"]
        iid, uid = shown["id"], shown["user"]["id"]
        listed = check(reader, "GET", "/invitations").json()["invitations"]
        assert [i["url"] for i in listed if i["id"] == iid] == [None]  # the link is shown once
        check(reader, "GET", f"/invitations/{iid}")
        user = check(reader, "GET", f"/users/{uid}").json()
        assert user["role"] == "developer" and user["acl"] == ["bind:*.dana.internal"]
        assert user["sso_bound"] is False and user["last_login_at"] is None
        check(api, "GET", "/users", params={"limit": "1"})
        tag = check(api, "GET", f"/users/{uid}").headers["etag"]
        changed = check(
            api, "PATCH", f"/users/{uid}", json={"role": "auditor"}, headers={"If-Match": tag}
        )
        assert changed.json()["role"] == "auditor" and changed.json()["acl"] == []
        stale = check(
            api, "PATCH", f"/users/{uid}", json={"role": "admin"}, headers={"If-Match": tag}
        )
        assert stale.status_code == 412
        assert (
            check(api, "PATCH", f"/users/{uid}", json={"acl": ["bind:x.internal"]}).status_code
            == 400
        )
        assert (
            check(api, "POST", "/invitations", json={"email": "nope", "role": "admin"}).status_code
            == 400
        )
        assert (
            check(
                reader, "POST", "/invitations", json={"email": "e@x.io", "role": "admin"}
            ).status_code
            == 403
        )
        assert check(dev, "GET", "/invitations").status_code == 403
        assert check(dev, "GET", "/users").json()["users"] == []  # a key is not a user
        assert check(dev, "GET", f"/users/{uid}").status_code == 404
        assert check(api, "DELETE", f"/invitations/{iid}").status_code == 204
        assert check(api, "GET", f"/invitations/{iid}").status_code == 404
        assert check(api, "DELETE", f"/users/{uid}").status_code == 204
        assert check(api, "GET", f"/users/{uid}").status_code == 404
    deadline = time.monotonic() + 10  # the audit is written by a thread: wait for the last line
    while "user_deleted.v0" not in {e["event_type"] for e in edge.audit()}:
        assert time.monotonic() < deadline, "no user_deleted.v0 event"
        time.sleep(0.05)
    events = [e["event_type"] for e in edge.audit()]
    for kind in (
        "invitation_created.v0",
        "user_updated.v0",
        "invitation_deleted.v0",
        "user_deleted.v0",
    ):
        assert kind in events
    created = next(e for e in edge.audit() if e["event_type"] == "invitation_created.v0")
    assert "url" not in created["object"] and "ewi_" not in json.dumps(created)
