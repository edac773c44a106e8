"""Secrets for `secrets.get`: the edge config's `secrets:` section, the
per-policy binding into both CEL backends, the load-time check of constant
lookups, `policy check|test --secrets`, and that a secret value never
leaves the edge in an event, the access log, a log line or an error message
(through `edgeward serve`, on both backends)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.policy.e2e import BACKENDS, echo_headers, serve
from tests.policy.helpers import Harness, parse, request
from tests.proxy.proxy_support import Edge, start_edge

from edgeward.cli import main
from edgeward.config import load_config
from edgeward.errors import ConfigError
from edgeward.policy import PolicyCompiler, PolicyError, compile_policy
from edgeward.policy.events import ListSink
from edgeward.secrets import Secrets, load_secrets

PASSWORD = "correct-horse-battery"  # from a file
TOKEN = "tok-4f9c2e81d7"  # from an environment variable

EDGE = """
listeners:
  - name: web
    address: 127.0.0.1:8080
secrets:
  creds:
    password: {file: password.txt}
  api:
    token: {env: EDGEWARD_TEST_TOKEN}
endpoints:
  - name: app
    hostname: example.com
    upstream: http://127.0.0.1:9
"""


def write_config(tmp_path: Path, text: str = EDGE) -> Path:
    (tmp_path / "password.txt").write_text(PASSWORD + "\n")
    path = tmp_path / "edge.yml"
    path.write_text(text)
    return path


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEWARD_TEST_TOKEN", TOKEN)


# --- the edge config's secrets: ----------------------------------------------------------


@pytest.mark.usefixtures("token_env")
def test_secrets_are_read_from_files_and_the_environment(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    assert config.secrets["creds"]["password"] == PASSWORD  # one trailing newline dropped
    assert config.secrets["api"]["token"] == TOKEN
    shown = repr(config) + repr(config.secrets) + repr(config.secrets["api"])
    assert PASSWORD not in shown and TOKEN not in shown
    assert config.endpoints[0].policy_source is None


@pytest.mark.parametrize(
    ("entry", "line", "message"),
    [
        ("password: {file: missing.txt}", 7, "cannot read"),
        ("password: {env: EDGEWARD_TEST_UNSET}", 7, "EDGEWARD_TEST_UNSET is not set"),
        ("password: {file: empty.txt}", 7, "the secret is empty"),
        ("password: {file: latin1.txt}", 7, "is not UTF-8 text"),
        ("password: {value: inline}", 7, "{file: PATH} or {env: VARIABLE}"),
        ("password: {file: a, env: B}", 7, "{file: PATH} or {env: VARIABLE}"),
        ("pass word: {env: HOME}", 7, "secret name"),
    ],
)
def test_secret_load_errors_are_located(
    tmp_path: Path, entry: str, line: int, message: str
) -> None:
    (tmp_path / "empty.txt").write_text("\n")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9")
    text = EDGE.replace("password: {file: password.txt}", entry)
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, text))
    assert info.value.location is not None
    assert info.value.location.file == str(tmp_path / "edge.yml")
    assert info.value.location.line == line
    assert message in info.value.message
    assert "caf" not in str(info.value)


def test_a_vault_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="vault 'creds' must map"):
        load_config(write_config(tmp_path, EDGE.replace("creds:\n    password", "creds: 1\n    #")))


# --- compiling against secrets ---------------------------------------------------------------

POLICY = """
on_http_request:
  - expressions: ["req.headers['x-token'][0] != secrets.get('api', 'token')"]
    actions: [{type: deny, config: {status_code: 401}}]
  - actions:
      - type: add-headers
        config:
          headers:
            authorization: "Bearer ${secrets.get('api', 'token')}"
            x-dynamic: "${secrets.get('api', req.headers['x-name'][0])}"
"""
TABLE = {"api": {"token": TOKEN, "other": "second-secret"}}


def harness(text: str, secrets: dict[str, dict[str, str]] | None) -> Harness:
    sink = ListSink()
    return Harness(compile_policy(parse(text), events=sink, secrets=secrets), sink)


def test_secrets_get_reads_the_policys_secrets() -> None:
    h = harness(POLICY, TABLE)
    r = request(h, headers=[("x-token", TOKEN), ("x-name", "other")])
    assert r.forwarded is not None
    assert r.upstream_header("authorization") == [f"Bearer {TOKEN}"]
    assert r.upstream_header("x-dynamic") == ["second-secret"]
    assert request(h, headers=[("x-token", "nope"), ("x-name", "other")]).status == 401
    # A computed name that does not exist: a run-time error, fail closed,
    # and the event names the secret, not a value.
    r = request(h, headers=[("x-token", TOKEN), ("x-name", "nope")])
    assert r.status == 500
    assert "no secret 'nope'" in h.events[-1].reason or 'no secret "nope"' in h.events[-1].reason


def test_each_policy_has_its_own_secrets() -> None:
    text = """
on_http_request:
  - actions: [{type: add-headers, config: {headers: {x-s: "${secrets.get('api', 'token')}"}}}]
"""
    first = harness(text, {"api": {"token": "first-value"}})
    second = harness(text, {"api": {"token": "second-value"}})
    assert request(first).upstream_header("x-s") == ["first-value"]
    assert request(second).upstream_header("x-s") == ["second-value"]


def test_an_unknown_constant_secret_is_a_located_load_error() -> None:
    text = """
on_http_request:
  - actions:
      - type: add-headers
        config:
          headers:
            x-s: "${secrets.get('api', 'missing')}"
"""
    with pytest.raises(PolicyError) as info:
        compile_policy(parse(text), secrets=TABLE)
    (diagnostic,) = info.value.diagnostics
    assert "no secret" in diagnostic.message and "missing" in diagnostic.message
    assert diagnostic.location.line == 7
    with pytest.raises(PolicyError):  # also in an expression, and with no secrets at all
        compile_policy(parse("on_http_request: [{expressions: [\"secrets.get('a', 'b') == ''\"],"
                             " actions: [{type: deny}]}]"), secrets={})  # fmt: skip


def test_the_secrets_cannot_be_read_as_a_whole() -> None:
    for source in ("${secrets}", "${json.encode(secrets)}"):
        headers = f"{{headers: {{x: '{source}'}}}}"
        text = f"on_http_request: [{{actions: [{{type: add-headers, config: {headers}}}]}}]"
        with pytest.raises(PolicyError, match="undeclared reference to 'secrets'"):
            compile_policy(parse(text), secrets=TABLE)


def test_without_secrets_lookups_are_warned_about_and_fail_at_run_time() -> None:
    h = harness(POLICY, None)
    warnings = [w.message for w in h.policy.warnings]
    assert any("api/token" in w and "api/<computed>" in w and "--secrets" in w for w in warnings)
    assert request(h, headers=[("x-token", "t"), ("x-name", "n")]).status == 500


def test_policy_compiler_uses_the_edge_configs_secrets(tmp_path: Path, token_env: None) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    text = EDGE + "    traffic_policy_file: policy.yml\n"
    compiler = PolicyCompiler(events=ListSink())
    config = load_config(write_config(tmp_path, text), compiler)
    hooks = config.endpoints[0].policy
    assert hooks is not None
    h = Harness(hooks, ListSink())  # type: ignore[arg-type]
    r = request(h, headers=[("x-token", TOKEN), ("x-name", "token")])
    assert r.upstream_header("authorization") == [f"Bearer {TOKEN}"]
    # An unknown constant secret fails the edge config's load, located.
    policy.write_text(POLICY.replace("'api', 'token')}", "'api', 'nope')}"))
    with pytest.raises(ConfigError, match="no secret"):
        load_config(write_config(tmp_path, text), compiler)


def test_event_reasons_and_log_metadata_never_show_a_secret() -> None:
    text = """
on_http_request:
  - name: log
    actions:
      - type: log
        config:
          metadata:
            token: "${secrets.get('api', 'token')}"
  - name: broken
    actions:
      - type: add-headers
        config:
          headers:
            x-n: "${string(int(secrets.get('api', 'token')))}"
"""
    h = harness(text, TABLE)
    assert request(h).status == 500
    assert [e.verdict for e in h.events] == ["log", "error"]
    dump = " ".join(e.to_json() for e in h.events)
    assert TOKEN not in dump
    assert "[secret]" in dump


# --- policy check / policy test ---------------------------------------------------------------


def test_policy_check_without_and_with_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], token_env: None
) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    assert main(["policy", "check", str(policy)]) == 0
    out = capsys.readouterr().out
    assert "api/token" in out and "--secrets" in out
    edge = write_config(tmp_path, EDGE.replace("api:\n    token", "api:\n    tokn"))
    # Against the edge config's secrets (--secrets accepts an edge config): 'token'
    # is missing there.
    assert main(["policy", "check", str(policy), "--secrets", str(edge)]) == 1
    out = capsys.readouterr().out
    assert "no secret" in out and TOKEN not in out
    secrets_file = tmp_path / "secrets.yml"
    secrets_file.write_text("api:\n  token: {env: EDGEWARD_TEST_TOKEN}\n")
    assert main(["policy", "check", str(policy), "--secrets", str(secrets_file)]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and TOKEN not in out and "api/token" not in out
    assert load_secrets(secrets_file)["api"]["token"] == TOKEN


def test_policy_test_with_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], token_env: None
) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    cases = tmp_path / "cases.yml"
    cases.write_text(
        "cases:\n"
        "  - name: allowed\n"
        "    request: {url: https://example.com/, headers: {x-token: "
        + TOKEN
        + ", x-name: token}}\n"
        "    expect: {forwarded: true}\n"
        "  - name: denied\n"
        "    request: {url: https://example.com/, headers: {x-token: nope, x-name: token}}\n"
        "    expect: {status: 401}\n"
    )
    secrets_file = tmp_path / "secrets.yml"
    secrets_file.write_text("api:\n  token: {env: EDGEWARD_TEST_TOKEN}\n")
    code = main(["policy", "test", str(policy), str(cases), "--secrets", str(secrets_file)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "2 passed, 0 failed" in out
    assert TOKEN not in out.replace(f"x-token: {TOKEN}", "")


# --- through edgeward serve ----------------------------------------------------------------------

SERVE_CONFIG = """
access_log: {access_log}
secrets:
  creds:
    password: {{file: password.txt}}
  api:
    token: {{env: EDGEWARD_TEST_TOKEN}}
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - name: app
    hostname: 127.0.0.1
    upstream: {upstream}
    traffic_policy_file: policy.yml
"""
SERVE_POLICY = """
on_http_request:
  - name: login
    actions:
      - type: basic-auth
        config:
          credentials: ["alice:${secrets.get('creds', 'password')}"]
  - name: broken
    expressions: ["req.url.path == '/boom'"]
    actions:
      - type: add-headers
        config:
          headers:
            x-n: "${string(int(secrets.get('api', 'token')))}"
  - name: token
    actions:
      - type: log
        config:
          metadata: {token: "${secrets.get('api', 'token')}"}
      - type: add-headers
        config:
          headers:
            x-upstream-token: "Bearer ${security.secret('api', 'token')}"
"""


@contextlib.contextmanager
def serving(tmp_path: Path, backend: str, upstream: str) -> Iterator[Edge]:
    (tmp_path / "password.txt").write_text(PASSWORD + "\n")
    (tmp_path / "policy.yml").write_text(SERVE_POLICY)
    saved = {k: os.environ.get(k) for k in ("EDGEWARD_BACKEND", "EDGEWARD_TEST_TOKEN")}
    os.environ.update({"EDGEWARD_BACKEND": backend, "EDGEWARD_TEST_TOKEN": TOKEN})
    try:
        edge = start_edge(tmp_path, SERVE_CONFIG, upstream=upstream)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        yield edge
    finally:
        edge.stop()


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("backend", BACKENDS)
def test_secrets_through_edgeward_serve(tmp_path: Path, backend: str) -> None:
    routes = {"/": echo_headers, "/boom": echo_headers}
    with serve(routes) as upstream, serving(tmp_path, backend, upstream.url) as edge:
        base = f"http://127.0.0.1:{edge.ports['web']}"
        with httpx.Client(base_url=base, timeout=10) as client:
            ok = client.get("/", headers=basic("alice", PASSWORD))
            assert ok.status_code == 200, edge.log_text()
            # The secret from the environment reached the upstream...
            assert ["x-upstream-token", f"Bearer {TOKEN}"] in ok.json()["headers"]
            # ... the one from the file checked the credentials.
            assert client.get("/", headers=basic("alice", "wrong")).status_code == 401
            boom = client.get("/boom", headers=basic("alice", PASSWORD))
            assert boom.status_code == 500
            assert TOKEN not in boom.text and PASSWORD not in boom.text
        edge.stop()
        log = edge.log_text()
        access = edge.access_log.read_text()
    assert [e["verdict"] for e in events_of(log)] == ["log", "deny", "error"]
    for text in (log, access):
        assert TOKEN not in text and PASSWORD not in text
    assert "[secret]" in log  # the log action's metadata and the failed int()
    assert access.count("\n") == 3


def events_of(log: str) -> list[dict[str, object]]:
    """The policy events in a log (the server log is JSON lines too)."""
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [record for record in records if "verdict" in record]


def test_secrets_type_is_a_mapping() -> None:
    secrets = Secrets({"v": {"k": "value-1234"}})
    assert dict(secrets["v"]) == {"k": "value-1234"}
    assert secrets.values_to_hide() == ["value-1234"]
    assert "value-1234" not in repr(secrets) + repr(secrets["v"])


def test_the_policies_of_one_config_share_their_envs() -> None:
    from edgeward.policy.config import EngineOptions
    from edgeward.policy.model import Phase

    secrets = Secrets({"api": {"token": "x-value"}})
    first = EngineOptions(secrets=secrets).cel.get(Phase.HTTP_REQUEST)
    assert EngineOptions(secrets=secrets).cel.get(Phase.HTTP_REQUEST) is first
    other = Secrets({"api": {"token": "y-value"}})
    assert EngineOptions(secrets=other).cel.get(Phase.HTTP_REQUEST) is not first
    # Each policy notes its own reads.
    assert EngineOptions(secrets=secrets).cel.secrets_read == set()
