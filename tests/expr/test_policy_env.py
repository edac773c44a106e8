"""The Traffic Policy environment: its functions (docs/cel.md §11.4), and
every expression and template of the public example policies compiles
against it, except the documented broken ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgeward.expr.policy_env import FUNCTIONS, VARIABLES, policy_env

ACTIVATION: dict[str, Any] = {
    "req": {
        "headers": {"host": ["example.com"], "x-api-key": ["k1", "k2"]},
        "cookies": {"session": [{"name": "session", "value": "s1"}, {"name": "session"}]},
        "url": {"": "https://example.com/?a=1&a=2", "query_params": {"a": ["1", "2"]}},
    },
    "res": {"headers": {"content-type": ["text/html"]}, "cookies": {}},
}
SECRETS = {"vault": {"token": "t0p"}}


def evaluate(cel: Any, source: str) -> Any:
    return cel.compile(source, env=cel.Env(VARIABLES, secrets=SECRETS)).evaluate(ACTIVATION)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("inCidrRange('10.1.2.3', '10.0.0.0/8')", True),
        ("inCidrRange('11.1.2.3', '10.0.0.0/8')", False),
        ("inCidrRange('2001:4860::1', '2001:4860::/32')", True),
        ("inCidrRange('::ffff:10.0.0.1', '10.0.0.0/8')", True),
        ("inCidrRange('10.0.0.1', '10.0.0.1')", True),
        ("inCidrRange('10.0.0.1', dyn('10.0.0.0/33'))", False),
        ("inCidrRange('not an ip', '0.0.0.0/0')", False),
        ("inCidrRanges('192.168.1.9', ['10.0.0.0/8', dyn('bad'), '192.168.0.0/16'])", True),
        ("'172.16.5.4'.isPrivateIp() && !'8.8.8.8'.isPrivateIp()", True),
        ("base64.encode(b'hello') == 'aGVsbG8=' && base64.encode('hello') == 'aGVsbG8='", True),
        ("base64.decode('aGVsbG8=') == b'hello' && base64.decode('aGVsbG8') == b'hello'", True),
        ("basic_auth.encode('username', 'password1')", "Basic dXNlcm5hbWU6cGFzc3dvcmQx"),
        ("url.escape('a b/ü')", "a+b%2F%C3%BC"),
        ("url.unescape('a+b%2F%C3%BC') == 'a b/ü' && 'a%20b'.unescapeUrl() == 'a b'", True),
        ("getReqHeader('Host')", ["example.com"]),
        ("getReqHeader('X-API-KEY')", ["k1", "k2"]),
        ("getReqHeader('missing')", []),
        ("hasReqHeader('HOST') && !hasReqHeader('x-missing')", True),
        ("getQueryParam('a') == ['1', '2'] && !hasQueryParam('A')", True),
        ("getReqCookie('session').value", "s1"),
        ("hasReqCookie('session') && !hasReqCookie('other')", True),
        ("getResHeader('Content-Type')", ["text/html"]),
        ("hasResCookie('session')", False),
        ("secrets.get('vault', 'token')", "t0p"),
        (
            "json.encode({'a': [1, 2.5, null, true], 'b': 'é\"'})",
            '{"a":[1,2.5,null,true],"b":"é\\""}',
        ),
        ('json.decode(\'{"a": [1, 2.5, "x", null]}\')', {"a": [1, 2.5, "x", None]}),
        ("'[1, 2]'.decodeJson() == [1, 2] && [1].encodeJson() == '[1]'", True),
        ("'{\"a\":1}'.isJson() && !'{a:1}'.isJson() && !'NaN'.isJson()", True),
        ("queryString.encode({'b': ['2', '1'], 'a': 'x y'})", "a=x+y&b=2&b=1"),
        ("queryString.decode('a=1&b=x+y&a=2')", {"a": ["1", "2"], "b": ["x y"]}),
        ("'a=1'.isQueryString() && !'a=%zz'.isQueryString()", True),
        ("hash.md5('hello')", "5d41402abc4b2a76b9719d911017c592"),
        ("hash.sha1('hello')", "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"),
        ("'hello'.sha256()", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
        ("hash.crc32('hello')", "3610a686"),
        ("hash.crc32('hello', 'base64')", "NhCmhg=="),
        ("hash.crc64('hello')", "3c3eeee2d8100000"),
        ("'hello'.crc64('base64')", "PD7u4tgQAAA="),
        ("rand.int(3, 3)", 3),
        ("rand.double() < 1.0", True),
        ("'Straße'.upper()", "STRASSE"),
        ("[3, 1, 2, 1].sort().distinct()", [1, 2, 3]),
        ("[[1, [2]], [3]].flatten()", [1, [2], 3]),
        ("[1, 2, 3, 4].slice(1, 3)", [2, 3]),
        ("lists.range(3)", [0, 1, 2]),
    ],
)
def test_policy_functions(cel: Any, source: str, expected: Any) -> None:
    result = evaluate(cel, source)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("getReqCookie('other')", "no_such_key"),
        ("secrets.get('vault', dyn('other'))", "no_such_key"),
        ("base64.decode('a')", "conversion"),
        ("json.decode('{')", "conversion"),
        ("json.decode('[' * 101 + ']' * 101)", "conversion"),
        ("json.encode({1: 2})", "invalid_argument"),
        ("json.encode(1.0/0.0)", "invalid_argument"),
        ("url.unescape('%zz')", "conversion"),
        ("hash.md5('a', dyn('hex2'))", "invalid_argument"),
        ("rand.int(2, 1)", "invalid_argument"),
        ("[1, 'a'].sort()", "invalid_argument"),
        ("[1].flatten(-1)", "invalid_argument"),
    ],
)
def test_policy_function_errors(cel: Any, source: str, kind: str) -> None:
    source = source.replace("'[' * 101 + ']' * 101", repr("[" * 101 + "]" * 101))
    with pytest.raises(cel.EvalError) as info:
        evaluate(cel, source)
    assert info.value.kind == kind


def test_function_table_is_consistent() -> None:
    names = {name for name, _, _, _ in FUNCTIONS}
    assert {"inCidrRange", "getReqHeader", "json.decode", "secrets.get"} <= names
    for _name, style, params, _result in FUNCTIONS:
        assert style in ("global", "receiver")
        assert style == "global" or params


def test_integers_from_json_and_uint(cel: Any) -> None:
    assert evaluate(cel, "json.decode('18446744073709551615')") == 18446744073709551615.0
    assert evaluate(cel, "json.encode([1u, -0.0, 1e21, b'\\x00'])") == '[1,-0,1e+21,"AA=="]'
    assert type(evaluate(cel, "uint(1)")) is cel.UInt


# --- the public example policies -----------------------------------------------------------

# Expressions and templates of the documentation that are not valid CEL for
# any gateway (traffic-policy-reference.md §2.9) or use names that are not
# variables or functions (§2.4): policy file -> why.
BROKEN = {
    "gateway_examples_blue_green_deployments__L48.yaml": "${...} inside an expression",
    "gateway_examples_blue_green_deployments__L85.yaml": "${...} in an expression; req.path",
    "gateway_examples_ephemeral_workloads__L149.yaml": "`!conn.client_ip in [..]` negates a string",
    "gateway_examples_front_door_pattern__L71.yaml": "`.includes()` is JavaScript, not CEL",
    "gateway_examples_lock_admin_dashboards__L44.yaml": "`.includes()` is JavaScript, not CEL",
    "gateway_examples_wordpress__L59.yaml": "`.includes()` is JavaScript, not CEL",
    "gateway_examples_pre_tier_requests__L50.yaml": "compares an int status with strings",
    "traffic_policy_examples_event_logging__L16.yaml": "compares an int status with strings",
    "gateway_webhooks_to_on_prem_tutorial__L243.yaml": "req.headers.get() and nested quotes",
    "guides_migration_modules_to_traffic_policy_actions__L50.yaml": "unbalanced parentheses",
    "integrations_guides_linode_gslb_edges__L216.yaml": "`${.ngrok.geo...}` is no variable",
    "traffic_policy_actions_http_request__L304.yaml": "JSON-escaped quotes in YAML",
    "traffic_policy_actions_response_body_find_replace__L174.yaml": "list.contains()",
    "traffic_policy_actions_set_vars__L288.yaml": "`request.headers` is a typo of req.headers",
    "traffic_policy_actions_set_vars__L343.yaml": "sort() takes no comparator",
}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _cel_sources(document: Any) -> Iterator[tuple[str, str]]:
    """("expression" | "template", text) of every rule of a policy document."""
    if not isinstance(document, dict):
        return
    for rules in document.values():
        for rule in rules if isinstance(rules, list) else []:
            if not isinstance(rule, dict):
                continue
            for expression in rule.get("expressions") or []:
                if isinstance(expression, str):
                    yield "expression", expression
            for text in _strings(rule.get("actions")):
                if "${" in text:
                    yield "template", text


def test_example_policies_compile(cel: Any, conformance: Path) -> None:
    """The public example policies of the conformance data set."""
    policies = sorted((conformance / "policies").glob("*.yaml"))
    assert policies, f"no policies/*.yaml in {conformance}"
    env = cel.Env(VARIABLES)
    compiled = 0
    failures = {}
    for path in policies:
        try:
            document = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            continue  # listed in policies-yaml-errors.tsv
        for what, text in _cel_sources(document):
            try:
                (cel.compile if what == "expression" else cel.interpolate)(text, env=env)
                compiled += 1
            except cel.PolicyExprError as exc:
                failures.setdefault(path.name, []).append(f"{text!r}: {exc}")
    assert set(failures) == set(BROKEN), failures
    assert compiled > 300
    assert policy_env().max_depth == 64


def test_example_conditions_have_the_same_static_type_on_both_backends(conformance: Path) -> None:
    """`Program.result_type` decides whether a rule loads (a condition must
    be `bool` or `dyn`): both checkers give every example the same type,
    and every example that compiles is a condition."""
    from .backends import backend_module

    python, native = backend_module("python"), backend_module("native")
    envs = {cel: cel.Env(VARIABLES) for cel in (python, native)}
    types: dict[str, int] = {}
    for path in sorted((conformance / "policies").glob("*.yaml")):
        try:
            document = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            continue
        for what, text in _cel_sources(document):
            if what != "expression":
                continue
            try:
                ours = python.compile(text, env=envs[python]).result_type
            except python.PolicyExprError:
                continue
            assert native.compile(text, env=envs[native]).result_type == ours, text
            types[ours] = types.get(ours, 0) + 1
    assert set(types) == {"bool"}, types
    assert types["bool"] > 150


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("req.url.path", "string"),
        ("req.url", "string"),
        ("conn.client_ip", "string"),
        ("req.headers", "map(string, list(string))"),
        ("req.headers['x'][0]", "string"),
        ("conn", "map(string, dyn)"),
        ("res.status_code", "int"),
        ("size(req.headers)", "int"),
        ("[1, 'a']", "list(dyn)"),
        ("vars.tier", "dyn"),
        ("json.decode('true')", "dyn"),
        ("vars.tier == 'gold'", "bool"),
        ("has(req.headers.x) && vars.x", "bool"),
        ("true ? 1 : 'a'", "dyn"),
        ("inCidrRange(conn.client_ip, '10.0.0.0/8')", "bool"),
    ],
)
def test_result_type(cel: Any, source: str, expected: str) -> None:
    assert cel.compile(source, env=cel.Env(VARIABLES)).result_type == expected
