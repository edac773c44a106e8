"""The control plane's resources against `edgeward serve` as a process:
IP policies and restrictions enforced on the admin API (httpx from
127.0.0.2), on the agent ingress (real `edgeward agent`s from 127.0.0.1 and,
through a relay, 127.0.0.2) and on public
traffic (curl and a kept-alive httpx connection); endpoints made through
the API serving real requests within a second, their policies checked as
`edgeward policy check` does; vault secrets read by `secrets.get`, never
shown, sealed at rest."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
from tests.admin.admin_support import ApiEdge, Key
from tests.agents.agents_support import TIMEOUT, Agent, Response, Token, curl, start_agent
from tests.agents.test_agent_http import named_server
from tests.proxy.proxy_support import EDGEWARD

from edgeward.store.store import database_files

T = TypeVar("T")


def eventually(probe: Callable[[], T], done: Callable[[T], bool]) -> T:
    """`probe()` until `done` says yes (the edge applies a change from its
    store watcher, within about 250 ms); the last value after TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        value = probe()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def made(answer: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    return dict(answer.json())


@contextmanager
def ip_policy(api: httpx.Client, *rules: tuple[str, str]) -> Iterator[dict[str, Any]]:
    policy = made(api.post("/ip_policies", json={"description": "test"}))
    for action, cidr in rules:
        made(
            api.post(
                "/ip_policy_rules",
                json={"ip_policy_id": policy["id"], "action": action, "cidr": cidr},
            )
        )
    try:
        yield policy
    finally:
        api.delete(f"/ip_policies/{policy['id']}")


@contextmanager
def restriction(
    api: httpx.Client, kind: str, policy: dict[str, Any], **extra: Any
) -> Iterator[dict[str, Any]]:
    shown = made(
        api.post("/ip_restrictions", json={"type": kind, "ip_policy_ids": [policy["id"]], **extra})
    )
    try:
        yield shown
    finally:
        assert api.delete(f"/ip_restrictions/{shown['id']}").status_code == 204


def from_address(edge: ApiEdge, key: Key, address: str) -> httpx.Client:
    headers = {"Ngrok-Version": "2", "Authorization": f"Bearer {key.token}"}
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=edge.url, headers=headers, timeout=30, transport=transport)


def test_ip_policies_and_rules_in_the_public_shape(edge: ApiEdge) -> None:
    admin, auditor, developer = edge.key("admin"), edge.key("auditor"), edge.key("developer")
    with edge.client(admin) as api:
        policy = made(api.post("/ip_policies", json={"description": "office", "metadata": "m"}))
        assert policy["id"].startswith("ipp_") and policy["uri"].endswith(policy["id"])
        rule = made(
            api.post(
                "/ip_policy_rules",
                json={"ip_policy_id": policy["id"], "action": "allow", "cidr": "10.0.0.0/8"},
            )
        )
        assert rule["ip_policy"] == {"id": policy["id"], "uri": policy["uri"]}
        assert rule["action"] == "allow" and rule["cidr"] == "10.0.0.0/8"
        bad = api.post(
            "/ip_policy_rules",
            json={"ip_policy_id": policy["id"], "action": "allow", "cidr": "10.0.0.1/8"},
        )
        assert bad.status_code == 400 and bad.json()["details"]["field"] == "cidr"
        assert "did you mean '10.0.0.0/8'" in bad.json()["msg"]
        bare = api.post(
            "/ip_policy_rules",
            json={"ip_policy_id": policy["id"], "action": "deny", "cidr": "10.1.2.3"},
        )
        assert bare.status_code == 400 and "10.1.2.3/32" in bare.json()["msg"]
        twice = api.post(
            "/ip_policy_rules",
            json={"ip_policy_id": policy["id"], "action": "deny", "cidr": "10.0.0.0/8"},
        )
        assert twice.status_code == 409 and twice.json()["error_code"] == "ERR_EDGEWARD_4122"
        etag = api.get(f"/ip_policy_rules/{rule['id']}").headers["etag"]
        changed = made(
            api.patch(
                f"/ip_policy_rules/{rule['id']}",
                json={"cidr": "10.2.0.0/16"},
                headers={"If-Match": etag},
            ),
            200,
        )
        assert changed["cidr"] == "10.2.0.0/16"
        stale = api.patch(
            f"/ip_policy_rules/{rule['id']}", json={"description": "x"}, headers={"If-Match": etag}
        )
        assert stale.status_code == 412
        with restriction(api, "dashboard", policy, enforced=False) as attached:
            assert attached["ip_policies"] == [{"id": policy["id"], "uri": policy["uri"]}]
            assert attached["enforced"] is False and attached["type"] == "dashboard"
            in_use = api.delete(f"/ip_policies/{policy['id']}")
            assert in_use.status_code == 409 and attached["id"] in in_use.json()["msg"]
            again = api.post(
                "/ip_restrictions", json={"type": "dashboard", "ip_policy_ids": [policy["id"]]}
            )
            assert again.status_code == 409
    with edge.client(auditor) as api:
        assert api.get("/ip_policies").json()["ip_policies"][0]["id"] == policy["id"]
        assert api.post("/ip_policies", json={}).status_code == 403
    with edge.client(developer) as api:
        rules = api.get("/ip_policy_rules").json()["ip_policy_rules"]
        assert [r["id"] for r in rules] == [rule["id"]]
        assert api.delete(f"/ip_policy_rules/{rule['id']}").status_code == 403
    with edge.client(admin) as api:
        assert api.delete(f"/ip_policies/{policy['id']}").status_code == 204
        assert api.get(f"/ip_policy_rules/{rule['id']}").status_code == 404


def test_the_api_restriction_refuses_a_denied_address_and_guards_the_caller(
    edge: ApiEdge,
) -> None:
    admin = edge.key("admin")
    with edge.client(admin) as api, ip_policy(api, ("allow", "127.0.0.1/32")) as mine:
        with ip_policy(api, ("allow", "127.0.0.2/32")) as other:
            # a restriction that would deny the caller (127.0.0.1) is refused
            refused = api.post(
                "/ip_restrictions", json={"type": "api", "ip_policy_ids": [other["id"]]}
            )
            assert refused.status_code == 409, refused.text
            assert refused.json()["error_code"] == "ERR_EDGEWARD_4121"
            assert "127.0.0.1" in refused.json()["msg"] and "force=true" in refused.json()["msg"]
            assert api.get("/ip_restrictions").json()["ip_restrictions"] == []
            with restriction(api, "api", mine) as shown:
                with from_address(edge, admin, "127.0.0.2") as denied:
                    answer = eventually(
                        lambda: denied.get("/credentials"), lambda a: a.status_code == 403
                    )
                    assert answer.status_code == 403, answer.text
                    body = answer.json()
                    assert body["error_code"] == "ERR_EDGEWARD_4120"
                    assert "127.0.0.2" in body["msg"] and shown["id"] in body["msg"]
                    assert body["details"]["operation_id"].startswith("op_")
                assert api.get("/credentials").status_code == 200  # 127.0.0.1 still in
                # taking the caller's own allow rule away is refused too, and changes nothing
                (rule,) = [
                    r
                    for r in api.get("/ip_policy_rules").json()["ip_policy_rules"]
                    if r["ip_policy"]["id"] == mine["id"]
                ]
                gone = api.delete(f"/ip_policy_rules/{rule['id']}")
                assert gone.status_code == 409
                assert api.get(f"/ip_policy_rules/{rule['id']}").status_code == 200
                # the other address comes in once its rule is added
                made(
                    api.post(
                        "/ip_policy_rules",
                        json={
                            "ip_policy_id": mine["id"],
                            "action": "allow",
                            "cidr": "127.0.0.2/32",
                        },
                    )
                )
                with from_address(edge, admin, "127.0.0.2") as allowed:
                    answer = eventually(
                        lambda: allowed.get("/credentials"), lambda a: a.status_code == 200
                    )
                    assert answer.status_code == 200
        with from_address(edge, admin, "127.0.0.2") as anyone:
            assert anyone.get("/credentials").status_code == 200


@contextmanager
def from_127_0_0_2(target: int) -> Iterator[int]:
    """A relay on 127.0.0.1 whose connections reach 127.0.0.1:`target` from
    the address 127.0.0.2 (bytes untouched: TLS goes through): how an agent
    connects from a second address of this machine."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.socket()
            upstream.bind(("127.0.0.2", 0))
            upstream.connect(("127.0.0.1", target))
            threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()


def test_the_agent_restriction_refuses_and_drops_agents_from_denied_addresses(
    edge: ApiEdge,
) -> None:
    admin = edge.key("admin")
    agents = edge.agents
    with edge.client(admin) as api:
        credential = made(api.post("/credentials", json={"acl": ["bind:*.apps.example.com"]}))
    token = Token(credential["id"], credential["token"])

    def agent(name: str, server: str | None = None) -> Agent:
        url = f"http://{name}.apps.example.com"
        return start_agent(agents, token, "http", str(port), "--url", url, server=server)

    with (
        named_server(b"agent") as port,
        from_127_0_0_2(agents.ingress_port) as relay,
        contextlib.ExitStack() as cleanup,
    ):
        via_relay = f"localhost:{relay}"
        direct = agent("ipa")  # from 127.0.0.1
        cleanup.callback(direct.kill)
        second = agent("ipb", via_relay)  # from 127.0.0.2
        cleanup.callback(second.kill)
        assert curl(direct.url, agents.web_port).body == b"agent"
        assert curl(second.url, agents.web_port).body == b"agent"
        with edge.client(admin) as api:
            sessions = api.get("/tunnel_sessions").json()["tunnel_sessions"]
            assert sorted(s["ip"] for s in sessions) == ["127.0.0.1", "127.0.0.2"]
            (relayed,) = [s["id"] for s in sessions if s["ip"] == "127.0.0.2"]
        with (
            edge.client(admin) as api,
            ip_policy(api, ("allow", "0.0.0.0/0"), ("deny", "127.0.0.2/32")) as policy,
            restriction(api, "agent", policy),
        ):
            # the agent from 127.0.0.2 is dropped at once, its endpoint withdrawn;
            # the one from 127.0.0.1 is untouched
            agents.wait_event(
                "agent_disconnected",
                session=relayed,
                reason="its address is denied by an IP restriction",
            )
            assert (
                eventually(
                    lambda: curl(second.url, agents.web_port), lambda r: r.status == 404
                ).status
                == 404
            )
            assert curl(direct.url, agents.web_port).body == b"agent"
            # a new agent from 127.0.0.2 is refused with a clear error, and it is logged
            refused = agent("ipc", via_relay)
            cleanup.callback(refused.kill)
            refused.wait_for("127.0.0.2 is not allowed to start agent sessions")
            assert refused.proc.wait(TIMEOUT) == 1
            agents.wait_event(
                "agent_auth_refused", client_ip="127.0.0.2", error_code="ERR_NGROK_115"
            )
            # the rule changes: now 127.0.0.1 is denied (its agent dropped) and 127.0.0.2 let in
            (deny,) = [
                r
                for r in api.get("/ip_policy_rules").json()["ip_policy_rules"]
                if r["action"] == "deny" and r["ip_policy"]["id"] == policy["id"]
            ]
            made(api.patch(f"/ip_policy_rules/{deny['id']}", json={"cidr": "127.0.0.1/32"}), 200)
            assert (
                eventually(
                    lambda: curl(direct.url, agents.web_port), lambda r: r.status == 404
                ).status
                == 404
            )
            back = _agent_once_allowed(lambda: agent("ipd", via_relay))
            cleanup.callback(back.kill)
            assert curl(back.url, agents.web_port).body == b"agent"


def _agent_once_allowed(start: Callable[[], Agent]) -> Agent:
    """An agent started until the edge has applied a change that lets it in
    (an agent refused at authentication exits)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        agent = start()
        agent.wait_for("connected to|not allowed")
        if any("connected to" in line for line in agent.lines):
            return agent
        agent.kill()
        assert time.monotonic() < deadline, "the agent was never let in"
        time.sleep(0.1)


def test_the_endpoints_restriction_refuses_new_connections_and_keeps_open_ones(
    edge: ApiEdge,
) -> None:
    admin = edge.key("admin")
    web = f"http://127.0.0.1:{edge.agents.web_port}/"
    site = f"http://site.example.com:{edge.agents.web_port}/"
    with httpx.Client(headers={"Host": "site.example.com"}, timeout=30) as kept:
        assert kept.get(web).status_code == 502  # site's upstream is 127.0.0.1:9: nobody
        with (
            edge.client(admin) as api,
            ip_policy(api, ("allow", "0.0.0.0/0"), ("deny", "127.0.0.1/32")) as policy,
        ):
            with restriction(api, "endpoints", policy):
                refused = eventually(
                    lambda: curl(site, edge.agents.web_port),
                    lambda r: r.status == 0,
                )
                assert refused.status == 0
                assert kept.get(web).status_code == 502  # the open connection still served
            assert (
                eventually(
                    lambda: curl(site, edge.agents.web_port),
                    lambda r: r.status == 502,
                ).status
                == 502
            )


def _policy(body: str) -> str:
    return (
        "on_http_request:\n"
        "  - actions:\n"
        "      - type: custom-response\n"
        "        config:\n"
        "          status_code: 200\n"
        f"          body: {body}\n"
    )


def test_a_cloud_endpoint_serves_within_a_second_and_its_policy_is_checked(
    edge: ApiEdge, tmp_path: Path
) -> None:
    admin = edge.key("admin")
    port = edge.agents.web_port
    url = f"http://cloud.example.com:{port}"

    def fetch() -> Response:
        return curl(url + "/", port)

    with edge.client(admin) as api:
        broken = _policy("x").replace("200", "99")
        refused = api.post("/endpoints", json={"url": url, "traffic_policy": broken})
        assert refused.status_code == 400, refused.text
        body = refused.json()
        assert body["error_code"] == "ERR_EDGEWARD_4123"
        (file := tmp_path / "traffic_policy").write_text(broken)
        checked = subprocess.run(
            [*EDGEWARD, "policy", "check", str(file)], capture_output=True, text=True, check=False
        )
        assert checked.returncode == 1
        errors = [d for d in body["details"]["diagnostics"] if d["severity"] == "error"]
        assert errors and errors[0]["line"] == 5 and "status_code" in (errors[0]["path"] or "")
        for diagnostic in errors:  # the same lines as `policy check`, file name and all
            assert diagnostic["text"].replace("traffic_policy", str(file), 1) in checked.stdout
        assert api.get("/endpoints").json()["endpoints"][-1]["type"] == "static"
        nowhere = api.post(
            "/endpoints", json={"url": "https://x.example.com:1", "traffic_policy": _policy("x")}
        )
        assert nowhere.status_code == 400 and nowhere.json()["details"]["field"] == "url"
        clash = api.post(
            "/endpoints",
            json={"url": f"http://site.example.com:{port}", "traffic_policy": _policy("x")},
        )
        assert clash.status_code == 409 and "site" in clash.json()["msg"]
        static = api.patch("/endpoints/cfg_site", json={"description": "x"})
        assert static.status_code == 400 and "edge config" in static.json()["msg"]

        assert fetch().status == 404
        endpoint = made(
            api.post(
                "/endpoints",
                json={"url": url, "traffic_policy": _policy("hello"), "description": "made"},
            )
        )
        assert endpoint["type"] == "cloud" and endpoint["id"].startswith("ep_")
        assert api.get(f"/endpoints/{endpoint['id']}").json() == endpoint
        assert eventually(fetch, lambda r: r.body == b"hello").body == b"hello"
        made(
            api.patch(f"/endpoints/{endpoint['id']}", json={"traffic_policy": _policy("again")}),
            200,
        )
        assert eventually(fetch, lambda r: r.body == b"again").body == b"again"
        # a reload of edge.yml keeps the endpoints made through the API
        process = edge.agents.edge
        reloads = process.log.read_text().count("edgeward: reloaded")
        process.proc.send_signal(signal.SIGHUP)
        eventually(
            lambda: process.log.read_text().count("edgeward: reloaded"), lambda n: n > reloads
        )
        assert fetch().body == b"again"
        assert api.delete(f"/endpoints/{endpoint['id']}").status_code == 204
        assert eventually(fetch, lambda r: r.status == 404).status == 404


def test_vault_secrets_are_write_only_sealed_and_read_by_secrets_get(edge: ApiEdge) -> None:
    admin, auditor, developer = edge.key("admin"), edge.key("auditor"), edge.key("developer")
    port = edge.agents.web_port
    url = f"http://vaulted.example.com:{port}"
    value = "s3cret-value-4d2f9a"
    with edge.client(admin) as api:
        vault = made(api.post("/vaults", json={"name": "hooks", "description": "webhooks"}))
        assert api.post("/vaults", json={"name": "hooks"}).status_code == 409
        secret = made(
            api.post("/secrets", json={"vault_id": vault["id"], "name": "token", "value": value})
        )
        assert "value" not in secret and value not in api.get(f"/secrets/{secret['id']}").text
        assert secret["vault"]["id"] == vault["id"]
        listed = api.get(f"/vaults/{vault['id']}/secrets").json()["secrets"]
        assert [s["id"] for s in listed] == [secret["id"]]
        for path in database_files(edge.agents.state_dir):
            assert value.encode() not in path.read_bytes()
        missing = api.post(
            "/endpoints",
            json={"url": url, "traffic_policy": _policy("\"${secrets.get('hooks', 'nope')}\"")},
        )
        assert missing.status_code == 400 and "nope" in missing.text
        endpoint = made(
            api.post(
                "/endpoints",
                json={
                    "url": url,
                    "traffic_policy": _policy("\"${secrets.get('hooks', 'token')}\""),
                },
            )
        )
        assert (
            eventually(lambda: curl(url + "/", port), lambda r: r.body == value.encode()).body
            == value.encode()
        )
        made(api.patch(f"/secrets/{secret['id']}", json={"value": "rotated"}), 200)
        assert (
            eventually(lambda: curl(url + "/", port), lambda r: r.body == b"rotated").body
            == b"rotated"
        )
        assert api.delete(f"/endpoints/{endpoint['id']}").status_code == 204
    with edge.client(auditor) as api:
        assert api.get(f"/secrets/{secret['id']}").json()["name"] == "token"
        assert api.patch(f"/secrets/{secret['id']}", json={"value": "x"}).status_code == 403
    with edge.client(developer) as api:
        assert api.get("/vaults").status_code == 403
    with edge.client(admin) as api:
        assert api.delete(f"/vaults/{vault['id']}").status_code == 204
        assert api.get(f"/secrets/{secret['id']}").status_code == 404


def test_the_agent_ingress_is_listed_read_only(edge: ApiEdge) -> None:
    with edge.client(edge.key("auditor")) as api:
        (ingress,) = api.get("/agent_ingresses").json()["agent_ingresses"]
        assert ingress["domain"].endswith(f":{edge.agents.edge.ports['ingress']}")
        assert ingress["domains"] == ["*.apps.example.com"]
        assert api.get(f"/agent_ingresses/{ingress['id']}").json() == ingress
        assert api.post("/agent_ingresses", json={}).status_code == 405
