"""Event destinations and subscriptions through the admin API of a real
`edgeward serve`: they apply without a restart, subscriptions filter by
type and CEL, and the producers publish in the envelope: the admin API's
audit, agents (session start/end, bind, refused bind) and policy denies;
the admin listener's `/metrics` reports the bus and its destinations."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.admin.admin_support import ApiEdge
from tests.agents.agents_support import Pki, Token, agent_edge, curl, ingress_block
from tests.agents.test_agent_http import named_server
from tests.events.receivers import HttpReceiver, http_receiver, rsyslog
from tests.proxy.proxy_support import free_port, wait_port

EDGE = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - name: site
    hostname: site.example.com
    upstream: http://127.0.0.1:9
    listeners: [web]
    traffic_policy:
      on_http_request:
        - name: nobody
          actions: [{{type: deny}}]
api:
  address: 127.0.0.1:{port_api}
  events:
    - name: local
      target: {{file: {{path: {dir}/bus.jsonl}}}}
      sources: [policy_denied.v0]
admin:
  address: 127.0.0.1:{port_admin}
"""


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[ApiEdge]:
    body = EDGE + ingress_block(pki, domains=["*.apps.example.com"])
    port_api, port_admin = free_port(), free_port()
    directory = tmp_path_factory.mktemp("events-edge")
    with agent_edge(directory, pki, body, port_api=port_api, port_admin=port_admin) as running:
        running.edge.ports["api"] = port_api
        running.edge.ports["admin"] = port_admin
        wait_port(port_api, proc=running.edge.proc)
        wait_port(port_admin, proc=running.edge.proc)
        yield ApiEdge(running)


def wait_for(receiver: HttpReceiver, test: Any, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in receiver.events():
            if test(event):
                return event
        time.sleep(0.05)
    types = [e["event_type"] for e in receiver.events()]
    raise AssertionError(f"no such event among {types}")


def test_subscriptions_through_the_api_reach_a_collector(edge: ApiEdge) -> None:
    admin = edge.key("admin")
    with http_receiver() as receiver, edge.client(admin) as api:
        made = api.post(
            "/event_destinations",
            json={"description": "siem", "target": {"http": {"url": receiver.url}}},
        )
        assert made.status_code == 201, made.text
        destination = made.json()
        assert destination["id"].startswith("ed_") and destination["format"] == "json"
        sources = ["credential_*", "policy_denied.v0", "tunnel_session_*", "endpoint_*"]
        made = api.post(
            "/event_subscriptions",
            json={
                "sources": [{"type": t} for t in sources],
                "destination_ids": [destination["id"]],
                "filter": '!event_type.startsWith("credential_")'
                ' || object.description.startsWith("to-siem")',
            },
        )
        assert made.status_code == 201, made.text
        subscription = made.json()
        assert subscription["destinations"][0]["id"] == destination["id"]

        # applied by the edge's store watcher, without a restart
        def credential(description: str) -> dict[str, Any]:
            answer = api.post(
                "/credentials",
                json={"description": description, "acl": ["bind:*.ev.apps.example.com"]},
            )
            assert answer.status_code == 201
            return dict(answer.json())

        deadline = time.monotonic() + 20
        while not receiver.events() and time.monotonic() < deadline:
            credential("to-siem-probe")
            time.sleep(0.2)
        assert receiver.events()
        quiet = credential("quiet")
        loud = credential("to-siem")
        event = wait_for(receiver, lambda e: e["object"].get("id") == loud["id"])
        assert event["event_type"] == "credential_created.v0"
        assert event["principal"] == {"id": admin.id, "type": "api_key", "role": "admin"}
        assert "token" not in event["object"]
        assert all(e["object"].get("id") != quiet["id"] for e in receiver.events())

        # a policy deny
        web = edge.agents.web_port
        answer = curl(f"http://site.example.com:{web}/x", web)
        assert answer.status == 403
        denied = wait_for(receiver, lambda e: e["event_type"] == "policy_denied.v0")
        assert denied["object"]["endpoint"] == "site" and denied["object"]["rule"] == "nobody"
        assert denied["principal"]["type"] == "client"
        local = edge.directory / "bus.jsonl"  # the config's static destination
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            lines = local.read_text().splitlines() if local.exists() else []
            if any(denied["event_id"] in line for line in lines):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the policy deny is not in the config's destination")
        assert all('"policy_denied.v0"' in line for line in lines)

        # an agent: session, bind, refused bind, end
        token = Token(loud["id"], loud["token"])
        with named_server(b"ok") as port:
            agent = edge.agents.agent(
                token, "http", str(port), "--url", "http://a.ev.apps.example.com"
            )
            try:
                agent.url  # noqa: B018
                started = wait_for(
                    receiver, lambda e: e["event_type"] == "tunnel_session_started.v0"
                )
                assert started["principal"] == {"id": loud["id"], "type": "credential"}
                bound = wait_for(receiver, lambda e: e["event_type"] == "endpoint_bound.v0")
                assert bound["object"]["url"].startswith("http://a.ev.apps.example.com")
            finally:
                agent.kill()
            wait_for(receiver, lambda e: e["event_type"] == "tunnel_session_ended.v0")
            refused = edge.agents.agent(
                token, "http", str(port), "--url", "http://elsewhere.apps.example.com"
            )
            try:
                event = wait_for(receiver, lambda e: e["event_type"] == "endpoint_bind_refused.v0")
                assert event["object"]["url"].startswith("http://elsewhere.apps.example.com")
            finally:
                refused.kill()

        # a change of the subscription applies too: now API keys only
        changed = api.patch(
            f"/event_subscriptions/{subscription['id']}",
            json={"sources": [{"type": "api_key_created.v0"}], "filter": ""},
        )
        assert changed.status_code == 200, changed.text
        deadline = time.monotonic() + 20
        key = None
        while time.monotonic() < deadline:
            key = api.post("/api_keys", json={"role": "auditor"}).json()
            if any(e["object"].get("id") == key["id"] for e in receiver.events()):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the changed subscription never applied")
        after = credential("to-siem-after")
        key2 = api.post("/api_keys", json={"role": "auditor"}).json()
        wait_for(receiver, lambda e: e["object"].get("id") == key2["id"])
        assert all(e["object"].get("id") != after["id"] for e in receiver.events())

        assert api.delete(f"/event_subscriptions/{subscription['id']}").status_code == 204
        assert api.delete(f"/event_destinations/{destination['id']}").status_code == 204


def test_a_bad_filter_is_a_400_with_its_location(edge: ApiEdge) -> None:
    admin = edge.key("admin")
    with edge.client(admin) as api:
        destination = api.post(
            "/event_destinations", json={"target": {"file": {"path": "stderr"}}}
        ).json()
        answer = api.post(
            "/event_subscriptions",
            json={
                "sources": [{"type": "*"}],
                "destination_ids": [destination["id"]],
                "filter": 'event_type == "a" &&\n  object.n >',
            },
        )
        assert answer.status_code == 400
        body = answer.json()
        assert body["error_code"] == "ERR_EDGEWARD_4104"
        assert body["details"]["field"] == "filter"
        assert (body["details"]["line"], body["details"]["column"]) == (2, 13)
        assert body["msg"].startswith("filter: 2:13:")
        unknown = api.post(
            "/event_subscriptions",
            json={"sources": [{"type": "*"}], "destination_ids": ["ed_nope"]},
        )
        assert unknown.status_code == 400 and unknown.json()["details"]["field"] == (
            "destination_ids[0]"
        )
        bad = api.post("/event_destinations", json={"target": {"syslog": {"address": "x"}}})
        assert bad.status_code == 400
        assert bad.json()["details"]["field"] == "target.syslog.address"


def test_roles_and_the_token_is_never_shown(edge: ApiEdge) -> None:
    admin, auditor, developer = edge.key("admin"), edge.key("auditor"), edge.key("developer")
    target = {"http": {"url": "http://127.0.0.1:9/", "shape": "hec", "token": "sekret"}}
    with edge.client(admin) as api:
        made = api.post("/event_destinations", json={"target": target})
        assert made.status_code == 201
        assert made.json()["target"]["http"]["token"] == "********"
        assert "sekret" not in made.text
    with edge.client(auditor) as api:
        listed = api.get("/event_destinations")
        assert listed.status_code == 200 and "sekret" not in listed.text
        assert api.post("/event_destinations", json={"target": target}).status_code == 403
    with edge.client(developer) as api:
        assert api.get("/event_destinations").status_code == 403
        assert api.get("/event_subscriptions").status_code == 403


def test_a_syslog_destination_through_the_api(edge: ApiEdge, tmp_path: Path) -> None:
    admin = edge.key("admin")
    with rsyslog(tmp_path / "rsyslog") as daemon, edge.client(admin) as api:
        address = f"127.0.0.1:{daemon.tls_port or daemon.tcp_port}"
        tls = {"ca": str(daemon.pem.ca), "server_name": "syslog.test"} if daemon.tls_port else None
        target = {"syslog": {"address": address, "tls": tls}}
        destination = api.post("/event_destinations", json={"target": target}).json()
        subscription = api.post(
            "/event_subscriptions",
            json={
                "sources": [{"type": "credential_created.v0"}],
                "destination_ids": [destination["id"]],
            },
        ).json()
        deadline = time.monotonic() + 20
        made: list[str] = []
        while time.monotonic() < deadline and not daemon.lines():
            made.append(api.post("/credentials", json={"description": "s"}).json()["id"])
            time.sleep(0.2)
        lines = daemon.lines()
        assert lines and lines[0][3] == "credential_created.v0"
        assert json.loads(lines[0][5])["object"]["id"] in made
        api.delete(f"/event_subscriptions/{subscription['id']}")
        api.delete(f"/event_destinations/{destination['id']}")


def bus_metrics(edge: ApiEdge) -> dict[str, dict[str, float]]:
    """The edge's `edgeward_events_*` samples: name -> destination -> value
    ("" for the unlabelled count of events published)."""
    port = edge.agents.edge.ports["admin"]
    answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert answer.status_code == 200
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name.startswith("edgeward_events_"):
                where = sample.labels.get("destination", "")
                out.setdefault(sample.name, {})[where] = sample.value
    return out


def test_metrics_show_the_bus_and_each_destination(edge: ApiEdge) -> None:
    """A destination made through the API whose collector is down (503)
    keeps what it is sent: its spooled bytes show; deleted, it leaves."""
    admin = edge.key("admin")
    with http_receiver() as receiver, edge.client(admin) as api:
        receiver.status = 503
        target = {"http": {"url": receiver.url}}
        destination = api.post("/event_destinations", json={"target": target}).json()
        id = destination["id"]
        subscription = api.post(
            "/event_subscriptions",
            json={"sources": [{"type": "credential_created.v0"}], "destination_ids": [id]},
        ).json()
        deadline = time.monotonic() + 20
        while not bus_metrics(edge)["edgeward_events_spooled_bytes"].get(id):
            assert time.monotonic() < deadline, "the destination's spool never showed"
            api.post("/credentials", json={"description": "kept"})
            time.sleep(0.2)
        samples = bus_metrics(edge)
        assert samples["edgeward_events_published_total"][""] > 0
        assert samples["edgeward_events_dropped_total"][id] == 0
        assert {"_overflow", "cfg_local", id} <= set(samples["edgeward_events_dropped_total"])
        api.delete(f"/event_subscriptions/{subscription['id']}")
        assert api.delete(f"/event_destinations/{id}").status_code == 204
        deadline = time.monotonic() + 20
        while id in bus_metrics(edge)["edgeward_events_spooled_bytes"]:
            assert time.monotonic() < deadline, "the deleted destination stayed"
            time.sleep(0.1)
