"""The product brief's walkthrough as one browser test, every actor real:
`edgeward serve` (admin API, console, SSO, agent ingress, events to a
SIEM), Canaille as the company's OpenID Provider with TOTP, Debian's
chromium for the two people (an admin and a developer, each in a browser
of their own), real `edgeward agent` processes, Debian's rsyslog and an
HTTP collector as the SIEM's two inputs.

1. the admin signs in with SSO + MFA;
2. invites the developer in the console, with the grant `bind:*.dev-alice.internal`;
3. the developer follows the link, signs in with SSO + MFA, mints an
   authtoken within the grant (one beyond it is refused, with the reason);
4. `edgeward agent http` binds `https://app.dev-alice.internal` with it;
5. the security team's public endpoint, a cloud endpoint the admin makes
   in the console's endpoint form, forwards to it with `forward-internal`;
6. an IP restriction on the agent ingress, made in the console, refuses an
   agent from 127.0.0.2 (the reason on its stderr) while the first keeps serving;
7. every step is an event in both sinks, with the same event ids.

Screenshots of each step are kept in the test's tmp dir, artifacts/.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from tests.admin.console_support import ConsoleEdge, console_edge, sign_in_chromium
from tests.admin.test_control import from_127_0_0_2
from tests.admin.test_sso import person
from tests.admin.walkthrough_support import (
    TIMEOUT,
    Shots,
    Sinks,
    notice,
    sinks_config,
    submit,
)
from tests.agents.agents_support import Pki, Token, start_agent
from tests.agents.test_agent_http import named_server
from tests.events.receivers import http_receiver, rsyslog
from tests.identity.browser import chromium, skip_without_browser, wait_for
from tests.identity.op import running_provider
from tests.proxy.proxy_support import EDGEWARD

GRANT = "bind:*.dev-alice.internal"
APP = "https://app.dev-alice.internal"
APP_BODY = b"alice's app, on her laptop"
FORWARD = f"""on_http_request:
  - name: to the developer's internal endpoint
    actions:
      - type: forward-internal
        config:
          url: {APP}
"""
DENIED = "127.0.0.2"


def public_get(url: str, host: str) -> httpx.Response:
    """GET `url` as `host`, on a connection of its own."""
    with httpx.Client(timeout=30) as client:
        return client.get(url, headers={"host": host})


def eventually_get(url: str, host: str, body: bytes) -> httpx.Response:
    """`public_get` until it answers `body` (the edge applies a new cloud
    endpoint from its store watcher, a moment after the API's 201)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        answer = public_get(url, host)
        if answer.content == body or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def token_owner(edge: ConsoleEdge, key: str, token: Token) -> str:
    """The user an authtoken minted in the console belongs to."""
    with edge.sso.api(key) as api:
        answer = api.get(f"/credentials/{token.id}")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["owner_id"])


def refused_agent(token: Token, upstream: int, relay: int, pki: Pki) -> str:
    """The stderr of an `edgeward agent` connecting through the relay (from
    127.0.0.2) once the edge refuses it. An agent started before the edge
    applied the new restriction is let in (then dropped): started again."""
    command = [
        *EDGEWARD, "agent", "http", str(upstream), "--url", "https://other.dev-alice.internal",
        "--server", f"localhost:{relay}", "--ca", str(pki.ca),
    ]  # fmt: skip
    env = {**os.environ, "EDGEWARD_AUTHTOKEN": token.token, "XDG_CONFIG_HOME": "/nonexistent"}
    deadline = time.monotonic() + TIMEOUT
    while True:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        if proc.returncode == 1 and "is not allowed to start agent sessions" in err:
            return err
        assert time.monotonic() < deadline, (
            f"the agent was never refused with the reason on its stderr (exit {proc.returncode},"
            f" stderr {err!r}, stdout {out!r})"
        )
        time.sleep(0.2)


@skip_without_browser
@pytest.mark.slow
def test_the_walkthrough_of_the_brief_in_chromium(pki: Pki, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    shot = Shots(tmp_path / "artifacts")
    for name in ("artifacts", "edge"):
        (tmp_path / name).mkdir()
    with contextlib.ExitStack() as stack:
        syslog = stack.enter_context(rsyslog(tmp_path / "rsyslog"))
        collector = stack.enter_context(http_receiver())
        sinks = Sinks(syslog, collector)
        provider = stack.enter_context(running_provider(otp=True))
        edge = stack.enter_context(
            console_edge(tmp_path / "edge", pki, provider, sinks_config(syslog, collector))
        )
        console = edge.url + "/console"
        # The bootstrap admin key (`edgeward api-key create` on the edge's store) invites
        # the first admin, who signs in with SSO: from then on people work in the console.
        bootstrap = edge.sso.admin_key()
        ada = person(provider, "ada")
        ada_invitation = edge.sso.invite(bootstrap, ada.email, "admin")

        # 1. The admin signs in with SSO + MFA.
        admin = stack.enter_context(chromium(SimpleNamespace(spki_sha256="")))  # type: ignore[arg-type]
        admin.set_window_size(1280, 1000)
        sign_in_chromium(admin, ada_invitation["url"], ada, console)
        assert f"Signed in as {ada.email} (admin, oidc)" in admin.page_source
        shot(admin, "admin-signed-in")

        # 2. The admin invites the developer in the console, with the grant.
        alice = person(provider, "alice")
        admin.find_element(By.LINK_TEXT, "Users").click()
        submit(admin, "#invite", email=alice.email, role="developer", acl=GRANT)
        link = wait_for(admin, lambda d: d.find_elements(By.ID, "invite-url"), TIMEOUT)[0].text
        assert link.startswith(edge.url + "/invite/")
        shot(admin, "developer-invited")

        # 3. The developer, in a browser of her own, accepts and mints an authtoken.
        dev = stack.enter_context(chromium(SimpleNamespace(spki_sha256="")))  # type: ignore[arg-type]
        dev.set_window_size(1280, 1000)
        sign_in_chromium(dev, link, alice, console)
        assert f"Signed in as {alice.email} (developer, oidc)" in dev.page_source
        shot(dev, "developer-signed-in")
        dev.find_element(By.LINK_TEXT, "Authtokens").click()
        assert GRANT in dev.find_element(By.ID, "create-authtoken").text  # her grant, shown
        submit(dev, "#create-authtoken", description="beyond", acl="bind:*.other.internal")
        error = wait_for(dev, lambda d: d.find_elements(By.ID, "error"), TIMEOUT)[0].text
        assert "bind:*.other.internal" in error and "goes beyond what this key may grant" in error
        assert not dev.find_elements(By.ID, "new-token")
        shot(dev, "mint-beyond-the-grant-refused")
        submit(dev, "#create-authtoken", description="alice's laptop", acl=GRANT)
        wait_for(dev, lambda d: d.find_elements(By.ID, "new-token"), TIMEOUT)
        made = re.search(r"(at_\w+)", dev.find_element(By.ID, "created").text)
        assert made
        token = Token(made.group(1), dev.find_element(By.ID, "new-token").text)
        assert token.token.startswith("ewt_")
        shot(dev, "authtoken-shown-once")

        # 4. `edgeward agent http` binds her internal endpoint.
        app = stack.enter_context(named_server(APP_BODY))
        agent = start_agent(edge.agents, token, "http", str(app), "--url", APP)
        stack.callback(agent.kill)
        assert agent.url == APP
        dev.find_element(By.LINK_TEXT, "Sessions").click()
        wait_for(dev, lambda d: token.id in d.find_element(By.ID, "sessions").text, TIMEOUT)
        shot(dev, "agent-session")

        # 5. The security team's public endpoint forwards to it: the admin makes it in the
        #    console's endpoint form (the policy checked as the edge will run it).
        web_port = edge.agents.web_port
        public = f"http://alice.dev.example.com:{web_port}"
        admin.find_element(By.LINK_TEXT, "Endpoints").click()
        submit(
            admin, "#create-endpoint", url=public, description="alice, public",
            traffic_policy=FORWARD,
        )  # fmt: skip
        endpoint_id = notice(admin, rf"Endpoint (ep_\w+) serves {re.escape(public)}\.").group(1)
        shot(admin, "public-endpoint-made-in-the-console")
        host = f"alice.dev.example.com:{web_port}"
        through = eventually_get(f"http://127.0.0.1:{web_port}/", host, APP_BODY)
        assert through.status_code == 200 and through.content == APP_BODY, through.text
        agent.wait_for(r"GET\s+/\s+200")  # her agent's console shows the request
        admin.find_element(By.LINK_TEXT, "Endpoints").click()
        listed = admin.find_element(By.ID, "endpoints").text
        assert public in listed and APP in listed
        shot(admin, "public-and-internal-endpoints")

        # 6. An IP restriction on the agent ingress, in the console: 127.0.0.2 may not
        #    start agents (every other address may).
        admin.find_element(By.LINK_TEXT, "IP policies").click()
        submit(admin, "#create-ip-policy", description="no agents from the lab network")
        policy_id = notice(admin, r"IP policy (ipp_\w+) is created").group(1)
        for action, cidr in (("allow", "0.0.0.0/0"), ("deny", f"{DENIED}/32")):
            submit(admin, f"#ip-policy-{policy_id} form.add-rule", action=action, cidr=cidr)
            notice(admin, rf"Rule \w+: {action} {re.escape(cidr)}\.")
        submit(admin, "#attach-ip-policy", type="agent", ip_policy_id=policy_id)
        restriction_id = notice(admin, r"IP restriction (ipx_\w+) \(agent\) is created").group(1)
        row = admin.find_element(By.ID, f"ip-restriction-{restriction_id}")
        assert "yes" in row.text and policy_id in row.text  # enforced, with the policy
        admin.execute_script("arguments[0].scrollIntoView()", row)
        shot(admin, "agent-ip-restriction")
        relay = stack.enter_context(from_127_0_0_2(edge.agents.ingress_port))
        stderr = refused_agent(token, app, relay, pki)
        assert f"the address {DENIED} is not allowed to start agent sessions" in stderr
        assert restriction_id in stderr
        again = public_get(f"http://127.0.0.1:{web_port}/", host)
        assert again.content == APP_BODY  # the first agent, from 127.0.0.1, keeps serving
        dev.find_element(By.LINK_TEXT, "Sessions").click()
        sessions = dev.find_element(By.ID, "sessions").text
        assert token.id in sessions and DENIED not in sessions
        shot(dev, "first-agent-still-serving")

        # 7. Every step is an event in the syslog and the HTTP sinks, with the same ids.
        ada_id, alice_id = ada_invitation["user"]["id"], token_owner(edge, bootstrap, token)
        steps: list[tuple[str, str, str, dict[str, Any]]] = [
            ("1. the admin's user, bound at the first sign-in", "user_bound.v0", ada_id,
             {"email": ada.email, "role": "admin", "method": "oidc"}),
            ("1. the admin signs in", "login_succeeded.v0", ada_id, {"method": "oidc"}),
            ("2. the invitation", "invitation_created.v0", ada_id,
             {"email": alice.email, "role": "developer", "acl": [GRANT]}),
            ("3. her user, bound at her first sign-in", "user_bound.v0", alice_id,
             {"email": alice.email, "acl": [GRANT], "method": "oidc"}),
            ("3. she signs in", "login_succeeded.v0", alice_id, {"method": "oidc"}),
            ("3. the mint beyond her grant, refused", "session_used.v0", alice_id,
             {"method": "POST", "path": "/credentials", "status_code": 403}),
            ("3. her authtoken", "credential_created.v0", alice_id,
             {"id": token.id, "acl": [GRANT]}),
            ("4. the agent's session", "tunnel_session_started.v0", token.id,
             {"client_ip": "127.0.0.1"}),
            ("4. the bind", "endpoint_bound.v0", token.id, {"url": APP}),
            ("5. the public endpoint", "endpoint_created.v0", ada_id,
             {"id": endpoint_id, "url": public}),
            ("6. the IP policy", "ip_policy_created.v0", ada_id, {"id": policy_id}),
            ("6. its deny rule", "ip_policy_rule_created.v0", ada_id,
             {"action": "deny", "cidr": f"{DENIED}/32"}),
            ("6. the agent restriction", "ip_restriction_created.v0", ada_id,
             {"id": restriction_id, "type": "agent"}),
            ("6. the refused agent", "tunnel_session_refused.v0", "",
             {"client_ip": DENIED, "error_code": "ERR_NGROK_115"}),
        ]  # fmt: skip
        found = {what: sinks.both(what, kind, who, **fields) for what, kind, who, fields in steps}
        for what in ("1. the admin signs in", "3. she signs in"):
            assert "mfa" in found[what]["object"]["amr"], found[what]
        bound = found["3. her user, bound at her first sign-in"]["object"]
        assert bound["invitation"]["id"] == found["2. the invitation"]["object"]["id"]
        assert restriction_id in found["6. the refused agent"]["object"]["reason"]
        ids = sinks.same_ids()
        assert {e["event_id"] for e in found.values()} <= ids
    assert len(shot.taken) >= 8 and all(p.stat().st_size > 0 for p in shot.taken)
