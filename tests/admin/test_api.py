"""The admin API against `edgeward serve` as a process: httpx as the client,
`edgeward agent` as the agent, curl through the edge's listener."""

from __future__ import annotations

import json
import os
import subprocess

from tests.admin.admin_support import ApiEdge, Key
from tests.agents.agents_support import TIMEOUT, Token, curl
from tests.agents.test_agent_http import named_server
from tests.proxy.proxy_support import EDGEWARD

GRANT = "bind:*.alice.apps.example.com"


def _credential(edge: ApiEdge, key: Key, *acl: str, description: str = "") -> dict[str, object]:
    with edge.client(key) as api:
        answer = api.post("/credentials", json={"acl": list(acl), "description": description})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def test_a_credential_revoked_through_the_api_drops_its_agent(edge: ApiEdge) -> None:
    admin = edge.key("admin")
    made = _credential(edge, admin, "bind:*.apps.example.com", description="laptop")
    assert str(made["token"]).startswith("ewt_") and made["acl"] == ["bind:*.apps.example.com"]
    token = Token(str(made["id"]), str(made["token"]))
    with named_server(b"hello") as port:
        agent = edge.agents.agent(token, "http", str(port), "--url", "http://r.apps.example.com")
        try:
            url = agent.url
            assert curl(url, edge.agents.web_port).body == b"hello"
            with edge.client(admin) as api:
                sessions = api.get("/tunnel_sessions").json()["tunnel_sessions"]
                mine = [s for s in sessions if s["credential"]["id"] == token.id]
                assert len(mine) == 1 and mine[0]["ip"] == "127.0.0.1"
                endpoints = api.get("/endpoints").json()["endpoints"]
                assert [e["url"] for e in endpoints if e["type"] == "agent"] == [url]
                assert api.get(f"/credentials/{token.id}").json()["token"] is None
                assert api.delete(f"/credentials/{token.id}").status_code == 204
            edge.agents.wait_event("agent_revoked", authtoken=token.id)
            agent.wait_for("refused the authtoken")
            assert agent.proc.wait(TIMEOUT) == 1
            assert curl(url, edge.agents.web_port).status == 404
            with edge.client(admin) as api:
                shown = api.get(f"/credentials/{token.id}").json()
                assert shown["revoked_at"] is not None and shown["token"] is None
                assert api.get("/endpoints").json()["endpoints"][0]["type"] == "static"
        finally:
            agent.kill()


def test_stopping_a_tunnel_session_withdraws_its_endpoints(edge: ApiEdge) -> None:
    admin = edge.key("admin")
    made = _credential(edge, admin, "bind:s.apps.example.com")
    token = Token(str(made["id"]), str(made["token"]))
    with named_server(b"s") as port:
        agent = edge.agents.agent(token, "http", str(port), "--url", "http://s.apps.example.com")
        try:
            agent.url  # noqa: B018
            with edge.client(admin) as api:
                sessions = api.get("/tunnel_sessions").json()["tunnel_sessions"]
                (session,) = [s for s in sessions if s["credential"]["id"] == token.id]
                assert api.get(f"/tunnel_sessions/{session['id']}").json() == session
                assert api.post(f"/tunnel_sessions/{session['id']}/stop").status_code == 204
                assert api.get(f"/tunnel_sessions/{session['id']}").status_code in (200, 404)
                gone = api.post(f"/tunnel_sessions/{session['id']}/stop")
                assert gone.status_code == 404
                assert gone.json()["error_code"] == "ERR_EDGEWARD_4103"
            edge.agents.wait_event(
                "agent_disconnected", session=session["id"], reason="stopped through the admin API"
            )
            agent.wait_for("the edge stopped this agent's session")  # Stop, performed:
            assert agent.proc.wait(TIMEOUT) == 0  # it exits instead of reconnecting
            assert curl(agent.url, edge.agents.web_port).status == 404
        finally:
            agent.kill()


def test_roles_auditor_reads_developer_mints_within_its_grant(edge: ApiEdge) -> None:
    admin, auditor = edge.key("admin"), edge.key("auditor")
    alice = edge.key("developer", GRANT)
    theirs = _credential(edge, admin, "bind:x.apps.example.com")
    with edge.client(auditor) as api:
        assert api.get("/credentials").status_code == 200
        assert api.get("/api_keys").status_code == 200
        refused = api.post("/credentials", json={"acl": ["bind:a.apps.example.com"]})
        assert refused.status_code == 403
        assert refused.json()["error_code"] == "ERR_EDGEWARD_4102"
        assert api.delete(f"/credentials/{theirs['id']}").status_code == 403
    with edge.client(alice) as api:
        ok = api.post("/credentials", json={"acl": ["bind:app.alice.apps.example.com"]})
        assert ok.status_code == 201 and ok.json()["owner_id"] == alice.id
        for acl in (["bind:*.apps.example.com"], ["*"], [], ["bind:alice.apps.example.com"]):
            beyond = api.post("/credentials", json={"acl": acl})
            assert beyond.status_code == 403, acl
            assert beyond.json()["error_code"] == "ERR_EDGEWARD_4106"
        listed = api.get("/credentials").json()["credentials"]
        assert [c["id"] for c in listed] == [ok.json()["id"]]
        assert api.get(f"/credentials/{theirs['id']}").status_code == 404
        assert api.delete(f"/credentials/{theirs['id']}").status_code == 404
        widened = api.patch(f"/credentials/{ok.json()['id']}", json={"acl": ["*"]})
        assert widened.status_code == 403
        assert api.post("/api_keys", json={"role": "admin"}).status_code == 403
        assert [k["id"] for k in api.get("/api_keys").json()["api_keys"]] == [alice.id]
        assert api.get("/endpoints").json()["endpoints"] == []  # no static ones: not its own
    with edge.client(admin) as api:
        made = api.post("/api_keys", json={"role": "developer", "acl": [GRANT]})
        assert made.status_code == 201 and made.json()["token"].startswith("ewk_")
        assert api.get(f"/api_keys/{made.json()['id']}").json()["token"] is None
        wrong = api.post("/api_keys", json={"role": "auditor", "acl": [GRANT]})
        assert wrong.status_code == 400
        assert api.post("/api_keys", json={"role": "root"}).status_code == 400


def test_authentication_and_version_header(edge: ApiEdge) -> None:
    with edge.client(None) as api:
        missing = api.get("/credentials")
        assert missing.status_code == 401
        assert missing.json()["error_code"] == "ERR_EDGEWARD_4100"
        bad = api.get("/credentials", headers={"Authorization": "Bearer ewk_nope"})
        assert bad.status_code == 401
    key = edge.key("admin")
    with edge.client(key) as api:
        old = api.get("/credentials", headers={"Ngrok-Version": "1"})
        assert old.status_code == 400 and old.json()["error_code"] == "ERR_EDGEWARD_4101"
        other = edge.key("admin")
        assert api.delete(f"/api_keys/{other.id}").status_code == 204
    with edge.client(other) as api:
        assert api.get("/credentials").status_code == 401  # a deleted key no longer works


def test_etags_and_if_match(edge: ApiEdge) -> None:
    admin = edge.key("admin")
    made = _credential(edge, admin, "bind:e.apps.example.com", description="one")
    with edge.client(admin) as api:
        first = api.get(f"/credentials/{made['id']}")
        tag = first.headers["etag"]
        changed = api.patch(
            f"/credentials/{made['id']}", json={"description": "two"}, headers={"If-Match": tag}
        )
        assert changed.status_code == 200 and changed.json()["description"] == "two"
        assert changed.headers["etag"] != tag
        stale = api.patch(
            f"/credentials/{made['id']}", json={"description": "three"}, headers={"If-Match": tag}
        )
        assert stale.status_code == 412
        assert stale.json()["error_code"] == "ERR_EDGEWARD_4105"
        assert api.get(f"/credentials/{made['id']}").json()["description"] == "two"
        assert (
            api.delete(f"/credentials/{made['id']}", headers={"If-Match": tag}).status_code == 412
        )
        fresh = api.get(f"/credentials/{made['id']}").headers["etag"]
        assert fresh == changed.headers["etag"]
        assert (
            api.delete(f"/credentials/{made['id']}", headers={"If-Match": fresh}).status_code == 204
        )
        bad = api.patch(f"/credentials/{made['id']}", json={"nope": 1})
        assert bad.status_code == 400


def test_pagination_follows_next_page_uri(edge: ApiEdge) -> None:
    dev = edge.key("developer", "bind:*.page.apps.example.com")
    made = [_credential(edge, dev, f"bind:p{i}.page.apps.example.com")["id"] for i in range(5)]
    seen: list[str] = []
    pages = 0
    with edge.client(dev) as api:
        uri: str | None = "/credentials?limit=2"
        while uri:
            page = api.get(uri).json()
            pages += 1
            assert len(page["credentials"]) <= 2
            seen += [c["id"] for c in page["credentials"]]
            uri = page["next_page_uri"]
        assert api.get("/credentials?limit=0").status_code == 400
        assert api.get("/credentials?before_id=at_unknown").status_code == 400
    assert pages == 3
    assert seen == list(reversed(made))  # newest first, each once


def test_audit_events_have_the_public_envelope(edge: ApiEdge) -> None:
    admin = edge.key("admin")
    made = _credential(edge, admin, "bind:audit.apps.example.com")
    with edge.client(admin) as api:
        api.delete(f"/credentials/{made['id']}")
    with edge.client(None) as api:
        api.get("/credentials", headers={"Authorization": f"Bearer {admin.token}x"})
    events = edge.audit()
    created = [e for e in events if e["event_type"] == "credential_created.v0"]
    mine = [e for e in created if e["object"]["id"] == made["id"]]
    assert len(mine) == 1
    event = mine[0]
    assert set(event) == {"event_id", "event_type", "event_timestamp", "object", "principal"}
    assert event["principal"] == {"id": admin.id, "type": "api_key", "role": "admin"}
    assert "token" not in event["object"] and str(made["token"]) not in json.dumps(events)
    assert any(
        e["event_type"] == "credential_deleted.v0" and e["object"]["id"] == made["id"]
        for e in events
    )
    uses = [e for e in events if e["event_type"] == "api_key_used.v0"]
    assert {"method": "DELETE", "status_code": 204} in [
        {k: e["object"][k] for k in ("method", "status_code")}
        for e in uses
        if e["principal"]["id"] == admin.id
    ]
    refused = [u for u in uses if u["object"]["status_code"] == 401]
    assert refused and refused[-1]["principal"]["type"] == "api_key"


def test_authtoken_cli_against_the_api(edge: ApiEdge) -> None:
    key = edge.key("developer", "bind:*.cli.apps.example.com")
    env = {**os.environ, "EDGEWARD_API_KEY": key.token}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*EDGEWARD, "authtoken", *args, "--api", edge.url],
            capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False,
        )  # fmt: skip

    created = cli("create", "--acl", "bind:a.cli.apps.example.com", "--json")
    assert created.returncode == 0, created.stderr
    data = json.loads(created.stdout)
    assert data["token"].startswith("ewt_") and data["acl"] == ["bind:a.cli.apps.example.com"]
    listed = cli("list", "--json")
    assert [row["id"] for row in json.loads(listed.stdout)] == [data["id"]]
    table = cli("list")
    assert data["id"] in table.stdout and "bind:a.cli.apps.example.com" in table.stdout
    beyond = cli("create", "--acl", "bind:*.apps.example.com")
    assert beyond.returncode == 1 and "ERR_EDGEWARD_4106" in beyond.stderr
    revoked = cli("revoke", data["id"])
    assert revoked.returncode == 0 and f"Revoked authtoken {data['id']}" in revoked.stdout
    assert json.loads(cli("list", "--json").stdout)[0]["revoked_at"] is not None
    env.pop("EDGEWARD_API_KEY")
    nokey = cli("list")
    assert nokey.returncode == 1 and "API key" in nokey.stderr


def test_an_admin_makes_a_credential_for_a_developer(edge: ApiEdge) -> None:
    admin, bob = edge.key("admin"), edge.key("developer", "bind:*.bob.apps.example.com")
    with edge.client(admin) as api:
        made = api.post("/credentials", json={"acl": ["*"], "owner_id": bob.id})
        assert made.status_code == 201 and made.json()["owner_id"] == bob.id
        nobody = api.post("/credentials", json={"acl": ["*"], "owner_id": "ak_nope"})
        assert nobody.status_code == 400
        huge = api.post("/credentials", content=b'{"description": "' + b"x" * 70000 + b'"}')
        assert huge.status_code == 413
    with edge.client(bob) as api:
        assert [c["id"] for c in api.get("/credentials").json()["credentials"]] == [
            made.json()["id"]
        ]
        other = api.post(
            "/credentials", json={"acl": ["bind:x.bob.apps.example.com"], "owner_id": admin.id}
        )
        assert other.status_code == 403
        assert other.json()["error_code"] == "ERR_EDGEWARD_4102"


def test_an_acl_narrowed_through_the_api_drops_the_agent_it_no_longer_allows(
    edge: ApiEdge,
) -> None:
    admin = edge.key("admin")
    made = _credential(edge, admin, "bind:n.apps.example.com", "bind:m.apps.example.com")
    token = Token(str(made["id"]), str(made["token"]))
    with named_server(b"n") as port:
        agent = edge.agents.agent(token, "http", str(port), "--url", "http://n.apps.example.com")
        try:
            url = agent.url
            with edge.client(admin) as api:
                tag = api.get(f"/credentials/{token.id}").headers["etag"]
                narrowed = api.patch(
                    f"/credentials/{token.id}",
                    json={"acl": ["bind:m.apps.example.com"]},
                    headers={"If-Match": tag},
                )
                assert narrowed.status_code == 200
            edge.agents.wait_event("agent_revoked", authtoken=token.id)
            # it reconnects with the same token, and its bind is now refused
            edge.agents.wait_event("agent_bind_refused", authtoken=token.id)
            assert curl(url, edge.agents.web_port).status == 404
        finally:
            agent.kill()
