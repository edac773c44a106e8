"""The activation: only the variables a policy reads, built once per
exchange, and every program finds what it reads."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgeward import native
from edgeward.document import load_document
from edgeward.hooks import RequestHead
from edgeward.policy import PolicyError
from edgeward.policy.loader import load
from edgeward.policy.variables import LazyMap, shape_of

from .helpers import ENDPOINT, conn, request
from .helpers import load as load_policy
from .test_conformance import AnyIpPolicy, example_policies

EXAMPLES = sorted(
    p
    for p in (Path(__file__).resolve().parents[2] / "examples" / "policies").glob("*.yml")
    if not p.name.endswith(".cases.yml")
)


def test_shape_of_references() -> None:
    assert shape_of(["req.url.path", "req.method", "conn.client_ip"]) == {
        "req": {"url": {"path": None}, "method": None},
        "conn": {"client_ip": None},
    }
    # A value read whole and read into keeps both, whatever the order: ""
    # marks the whole (for `req.url`, its own value, the URL string).
    assert shape_of(["req.url.path", "req.url"]) == {"req": {"url": {"path": None, "": None}}}
    assert shape_of(["req", "req.url.path"]) == {"req": {"": None, "url": {"path": None}}}
    assert shape_of(["req.url.path", "req"]) == {"req": {"url": {"path": None}, "": None}}


def _activation(text: str, **kw: Any) -> dict[str, Any]:
    """The request phase's activation, as the first rule saw it."""
    seen: dict[str, Any] = {}
    h = load_policy(text, **kw)
    original = h.policy._request.rules[0].condition
    assert original is not None

    class Spy:
        references = original.references

        def evaluate(self, activation: dict[str, Any]) -> Any:
            seen.update(activation)
            return original.evaluate(activation)

    rule = h.policy._request.rules[0]
    object.__setattr__(rule, "condition", Spy())
    # the Python engine's activation (the native runner builds its own)
    h.policy._request = dataclasses.replace(h.policy._request, runner=None)
    request(h, "/a%20b?x=1", headers=[("cookie", "a=b"), ("user-agent", "curl/8")])
    return seen


def test_activation_holds_only_what_the_policy_reads() -> None:
    seen = _activation(
        """
        on_http_request:
          - expressions: ["req.url.path == '/a b' && !req.user_agent.is_bot"]
            actions: [{type: add-headers, config: {headers: {x-ip: "${conn.client_ip}"}}}]
        """
    )
    # Plain dicts (the native CEL reads them fastest), no field not read.
    assert seen == {
        "req": {"url": {"path": "/a b"}, "user_agent": {"is_bot": True}},
        "conn": {"client_ip": "192.0.2.10"},
    }
    assert type(seen["req"]) is dict


def test_a_value_read_whole_is_complete() -> None:
    seen = _activation(
        """
        on_http_request:
          - expressions: ["size(req) > 0 && req.cookies['a'][0].value == 'b'"]
            actions: [{type: deny}]
        """
    )
    req = seen["req"]
    assert isinstance(req, LazyMap)
    assert req["url"]["query_params"] == {"x": ["1"]} and req["url"]["raw_path"] == "/a%20b"


def test_an_object_with_its_own_value_read_whole_is_that_value() -> None:
    # `req.url` is a string with fields: read whole, only the string is made;
    # read whole and into, both.
    seen = _activation(
        """
        on_http_request:
          - expressions: ["size(req.url) > 0 && conn.client_ip != ''"]
            actions: [{type: deny}]
        """
    )
    assert seen == {
        "req": {"url": "https://app.example.com/a%20b?x=1"},
        "conn": {"client_ip": "192.0.2.10"},
    }
    seen = _activation(
        """
        on_http_request:
          - expressions: ["req.url.contains('b') && req.url.path == '/a b'"]
            actions: [{type: deny}]
        """
    )
    assert seen["req"]["url"] == {"": "https://app.example.com/a%20b?x=1", "path": "/a b"}


def test_absent_fields_are_missing_keys() -> None:
    h = load_policy(
        """
        on_http_request:
          - expressions: ["!has(req.content_length) && !has(req.location)"]
            actions: [{type: custom-response, config: {status_code: 204}}]
        """
    )
    assert request(h).status == 204
    assert request(h, headers=[("content-length", "0")], method="POST").status == 200


def test_a_request_without_user_agent_reads_empty() -> None:
    # The reference marks what "may be absent"; req.user_agent is not: ''
    # and empty parsed fields, so a bot rule does not fail a bare client.
    h = load_policy(
        """
        on_http_request:
          - expressions:
              - "req.user_agent == '' && !req.user_agent.is_bot"
              - "req.user_agent.name == ''"
            actions: [{type: custom-response, config: {status_code: 204}}]
        """
    )
    assert request(h).status == 204
    assert request(h, headers=[("user-agent", "curl/8.5.0")]).status == 200


def _compiled(value: Any, seen: set[int]) -> Iterator[native.Program | native.Template]:
    """Every CEL program and template reachable from an action."""
    if id(value) in seen or isinstance(value, str | bytes | int | float | type | None):
        return
    seen.add(id(value))
    if isinstance(value, native.Program | native.Template):
        yield value
        return
    if isinstance(value, dict):
        children: list[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple | set | frozenset):
        children = list(value)
    elif isinstance(value, types.FunctionType):
        children = [cell.cell_contents for cell in value.__closure__ or ()]
    else:
        slots = [s for cls in type(value).__mro__ for s in getattr(cls, "__slots__", ())]
        children = [getattr(value, s, None) for s in slots]
        children += list(getattr(value, "__dict__", {}).values())
    for child in children:
        yield from _compiled(child, seen)


def _programs_read_only_the_activation(paths: list[Path]) -> int:
    """The loader notes what each program reads; a program compiled past
    it would find its variables missing at run time. Returns how many
    phases with programs were checked."""
    checked, missed = 0, []
    for path in paths:
        try:
            loaded = load(load_document(path), ip_policies=AnyIpPolicy())
        except PolicyError:
            continue
        for phase, rules in loaded.rules.items():
            found = set()
            for rule in rules:
                for program in _compiled([rule.condition, rule.chain, rule.steps], set()):
                    found.update(program.references)
            checked += bool(found)
            if not found <= loaded.references[phase]:
                missed.append(f"{path.name} {phase}: {found - loaded.references[phase]}")
    assert not missed
    return checked


def test_every_program_reads_only_what_the_activation_holds() -> None:
    assert _programs_read_only_the_activation(EXAMPLES) >= 5


def test_every_program_of_the_public_examples_reads_only_the_activation(
    conformance: Path,
) -> None:
    assert _programs_read_only_the_activation(example_policies(conformance)) > 90


def test_on_tcp_connect_results_and_endpoint() -> None:
    h = load_policy(
        """
        on_tcp_connect:
          - expressions: ["endpoint.name == 'app'"]
            actions:
              - type: restrict-ips
                config: {allow: [192.0.2.0/24], enforce: false}
        on_http_request:
          - expressions: ["actions.ngrok.restrict_ips.action == 'allow'"]
            actions:
              - type: custom-response
                config: {body: "${actions.ngrok.restrict_ips.matched_cidr}"}
        """
    )
    assert request(h).body == b"192.0.2.0/24"  # the tcp phase's result, seen by the request
    assert request(h, client_ip="198.51.100.1").status == 200  # denied but not enforced
    # Without an endpoint (a driver that does not know it), endpoint.* is
    # missing: the rule fails closed.
    assert h.policy.on_tcp_connect(conn()) is False


def test_on_tcp_connect_results_belong_to_the_connection() -> None:
    h = load_policy(
        """
        on_tcp_connect:
          - actions: [{type: restrict-ips, config: {allow: [0.0.0.0/0]}}]
        on_http_request:
          - expressions: ["'restrict_ips' in actions.ngrok"]
            actions: [{type: deny}]
        """
    )
    c = conn()
    head = RequestHead(b"GET", b"/", b"app.example.com", b"https", [], b"1.1")
    assert h.policy.begin(c, ENDPOINT, head, "r").results == {"ngrok": {}}  # no tcp phase yet
    assert h.policy.on_tcp_connect(c, ENDPOINT)
    assert "restrict_ips" in h.policy.begin(c, ENDPOINT, head, "r").results["ngrok"]
