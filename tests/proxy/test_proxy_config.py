"""The edge config: strict validation naming file, line and key; `edgeward
check` exit codes; the example config is valid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgeward.config import load_config, parse_document
from edgeward.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
listeners:
  - name: web
    address: 127.0.0.1:8080
endpoints:
  - name: app
    hostname: app.example.com
    upstream: http://127.0.0.1:9000
"""


def write(tmp_path: Path, text: str, name: str = "edge.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str, name: str = "edge.yml") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text, name))
    return info.value


def test_good_config_loads_with_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    (endpoint,) = config.endpoints
    assert endpoint.hostname == "app.example.com"
    assert endpoint.upstream.scheme == "http" and endpoint.upstream.port == 9000
    assert endpoint.listeners == ("web",)
    assert endpoint.host_header == "preserve"
    assert config.limits.max_header_bytes == 64 * 1024
    assert config.timeouts.header_read == 10
    assert not config.access_log.enabled


@pytest.mark.parametrize(
    ("text", "line", "path", "words"),
    [
        (
            GOOD + "  - hostname: b.example.com\n    upstream: http://x:1\n    upstrem: 1\n",
            10,
            "endpoints[1].upstrem",
            "unknown key",
        ),
        (
            GOOD.replace("address: 127.0.0.1:8080", "address: 8080"),
            3,
            "listeners[0].address",
            "must be a string",
        ),
        (
            GOOD.replace("address: 127.0.0.1:8080", "address: nowhere"),
            3,
            "listeners[0].address",
            "host:port",
        ),
        (
            GOOD + "limits:\n  max_body_bytes: lots\n",
            9,
            "limits.max_body_bytes",
            "must be a number of bytes, not 'lots'",
        ),
        (
            GOOD + "timeouts:\n  header_read: -1\n",
            9,
            "timeouts.header_read",
            "must be more than 0s, not -1s",
        ),
        (
            GOOD.replace("address: 127.0.0.1:8080", "address: 127.0.0.1:8080\n    http2: no"),
            4,
            "listeners[0].http2",
            "true or false, not 'no'",  # YAML 1.2: `no` is text
        ),
        (
            GOOD + "  - name: app2\n    hostname: APP.example.com\n    upstream: http://x:1\n",
            9,
            "endpoints[1].hostname",
            "duplicate hostname",
        ),
        (
            GOOD.replace("http://127.0.0.1:9000", "ftp://127.0.0.1:9000"),
            7,
            "endpoints[0].upstream",
            "must be http://",
        ),
        (
            GOOD.replace("hostname: app.example.com", "hostname: 'bad host'"),
            6,
            "endpoints[0].hostname",
            "not a hostname",
        ),
        (GOOD + "    listeners: [nope]\n", 8, "endpoints[0].listeners[0]", "no listener named"),
        (
            GOOD + "    traffic_policy_file: missing.yml\n",
            8,
            "endpoints[0].traffic_policy_file",
            "file not found",
        ),
        (
            GOOD.replace(
                "    address: 127.0.0.1:8080\n",
                "    address: 127.0.0.1:8080\n    tls:\n      certificates:\n"
                "        - {cert: a.pem, key: a.key}\n",
            ),
            6,
            "listeners[0].tls.certificates[0].cert",
            "file not found",
        ),
        (GOOD + "access_log: 3\n", 8, "access_log", "true (standard output), false (none)"),
        (GOOD + "access_log: nowhere/access.log\n", 8, "access_log", "directory not found"),
        (GOOD + "access_log: .\n", 8, "access_log", "is a directory"),
        (GOOD + "endpoints: []\n", 8, "endpoints", "duplicate key"),
        (
            GOOD.replace(
                "upstream: http://127.0.0.1:9000",
                "upstream:\n      url: http://127.0.0.1:9000\n      protocol: h2c",
            ),
            9,
            "endpoints[0].upstream.protocol",
            "must be 'http1' or 'http2', not 'h2c'",
        ),
        (
            GOOD.replace(
                "upstream: http://127.0.0.1:9000",
                "upstream:\n      url: ftp://127.0.0.1:9000\n      protocol: http2",
            ),
            8,
            "endpoints[0].upstream.url",
            "must be http://",
        ),
        (
            GOOD.replace(
                "upstream: http://127.0.0.1:9000", "upstream: {protocol: http2, ur: http://x:1}"
            ),
            7,
            "endpoints[0].upstream.ur",
            "unknown key 'ur'; did you mean 'url'?",
        ),
        (
            GOOD.replace("upstream: http://127.0.0.1:9000", "upstream: [http://x:1]"),
            7,
            "endpoints[0].upstream",
            "must be a URL or a mapping with url and protocol, not a list",
        ),
    ],
)
def test_errors_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, path: str, words: str
) -> None:
    err = error_of(tmp_path, text)
    assert err.location is not None
    assert err.location.file == str(tmp_path / "edge.yml")
    assert (err.location.line, err.location.path) == (line, path), str(err)
    assert words in err.message
    assert str(err).startswith(f"{tmp_path / 'edge.yml'}:{line}:")


@pytest.mark.parametrize(
    ("upstream", "protocol"),
    [
        ("http://127.0.0.1:9000", "http1"),
        ("{url: 'http://127.0.0.1:9000'}", "http1"),
        ("{url: 'http://127.0.0.1:9000', protocol: http1}", "http1"),
        ("{url: 'https://127.0.0.1:9000', protocol: http2}", "http2"),
        ("{url: 'unix:/run/app.sock', protocol: http2}", "http2"),
    ],
)
def test_upstream_protocol(tmp_path: Path, upstream: str, protocol: str) -> None:
    text = GOOD.replace("upstream: http://127.0.0.1:9000", f"upstream: {upstream}")
    (endpoint,) = load_config(write(tmp_path, text)).endpoints
    assert endpoint.upstream.protocol == protocol


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    err = error_of(tmp_path, GOOD + "  - [unclosed\n")
    assert err.location is not None and err.location.line == 9


def test_json_config_is_accepted_with_lines(tmp_path: Path) -> None:
    text = (
        '{\n  "listeners": [{"name": "web", "address": "127.0.0.1:8080"}],\n  "endpoints": [\n'
        '    {"hostname": "a.test", "upstream": "http://127.0.0.1:1", "bogus": 1}\n  ]\n}\n'
    )
    err = error_of(tmp_path, text, "edge.json")
    assert err.location is not None and (err.location.line, err.location.path) == (
        4,
        "endpoints[0].bogus",
    )
    ok = load_config(write(tmp_path, text.replace(', "bogus": 1', ""), "ok.json"))
    assert ok.endpoints[0].hostname == "a.test"


def test_invalid_json_is_rejected_even_if_it_is_valid_yaml(tmp_path: Path) -> None:
    err = error_of(tmp_path, "listeners: []\n", "edge.json")
    assert "invalid JSON" in err.message


def test_inline_policy_keeps_its_location(tmp_path: Path) -> None:
    text = GOOD + "    traffic_policy:\n      on_http_request:\n        - actions: [{type: deny}]\n"
    config = load_config(write(tmp_path, text))
    source = config.endpoints[0].policy_source
    assert source is not None
    assert source.document.data == {"on_http_request": [{"actions": [{"type": "deny"}]}]}
    assert source.document.locate(("on_http_request", 0, "actions", 0, "type")).line == 10
    assert source.origin.line == 8


def test_policy_file_is_loaded_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "policy.yml").write_text("on_http_request:\n  - actions:\n      - type: deny\n")
    config = load_config(write(tmp_path, GOOD + "    traffic_policy_file: policy.yml\n"))
    source = config.endpoints[0].policy_source
    assert source is not None
    assert source.document.file == str(tmp_path / "policy.yml")
    assert source.document.locate(("on_http_request", 0, "actions", 0, "type")).line == 3


def test_policy_factory_errors_fail_the_load(tmp_path: Path) -> None:
    def factory(source, ip_policies):  # type: ignore[no-untyped-def]
        raise ConfigError(
            "unknown action 'dney'",
            source.document.locate(("on_http_request", 0, "actions", 0, "type")),
        )

    path = write(
        tmp_path,
        GOOD + "    traffic_policy:\n      on_http_request:\n        - actions: [{type: dney}]\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, factory)
    assert info.value.location is not None and info.value.location.line == 10


def test_ip_policies_are_parsed(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            GOOD
            + "ip_policies:\n  office:\n    allow: [10.0.0.0/8, '2001:db8::/32']\n"
            + "    deny: [10.6.6.6]\n",
        )
    )
    office = config.ip_policies["office"]
    assert [str(n) for n in office.allow] == ["10.0.0.0/8", "2001:db8::/32"]
    assert [str(n) for n in office.deny] == ["10.6.6.6/32"]
    err = error_of(tmp_path, GOOD + "ip_policies:\n  office:\n    allow: [10.0.0.300/8]\n")
    assert err.location is not None and err.location.path == "ip_policies.office.allow[0]"


def test_document_marks_every_value() -> None:
    doc = parse_document("a:\n  - b: 1\n    c: [x, y]\n", "f.yml")
    assert doc.locate(("a", 0, "c", 1)).line == 3
    assert doc.locate(("a", 0, "nope")).line == 2  # nearest known ancestor


def run_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgeward.cli", "check", "--config", str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_check_command_accepts_the_example() -> None:
    out = run_check(ROOT / "examples" / "edge.yml")
    assert out.returncode == 0, out.stderr
    assert "OK" in out.stdout


def test_check_command_rejects_a_broken_config_with_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, GOOD + "  - hostname: app.example.com\n    upstream: http://127.0.0.1:1\n"
    )
    out = run_check(path)
    assert out.returncode == 1
    assert f"{path}:8:" in out.stderr
    assert "duplicate hostname" in out.stderr


def test_check_refuses_a_policy_without_an_engine(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "    traffic_policy: {on_http_request: []}\n")
    out = run_check(path)
    try:
        import edgeward.policy  # noqa: F401
    except ImportError:
        assert out.returncode == 1
        assert "policy engine" in out.stderr


def test_every_error_code_is_documented() -> None:
    from edgeward.proxy import errors

    doc = (ROOT / "docs" / "proxy.md").read_text()
    for error in errors.ALL:
        assert f"| {error.code} | {error.status} |" in doc
    assert len({e.code for e in errors.ALL}) == len(errors.ALL)


@pytest.mark.parametrize(
    ("text", "line", "path", "message"),
    [
        # A required key mistyped: the unknown key, at its own line, first.
        (
            GOOD.replace("    upstream: http", "    upstrem: http"),
            7,
            "endpoints[0].upstrem",
            "unknown key 'upstrem'; did you mean 'upstream'?",
        ),
        (
            GOOD.replace("    address: 127", "    adress: 127"),
            3,
            "listeners[0].adress",
            "unknown key 'adress'; did you mean 'address'?",
        ),
        (
            GOOD.replace("listeners:", "listners:"),
            1,
            "listners",
            "unknown key 'listners'; did you mean 'listeners'?",
        ),
        # An optional one: unknown, with the nearest key of its mapping.
        (
            GOOD + "    host_heder: upstream\n",
            8,
            "endpoints[0].host_heder",
            "unknown key 'host_heder'; did you mean 'host_header'?",
        ),
        (
            GOOD + "    traffic_polcy: {}\n",
            8,
            "endpoints[0].traffic_polcy",
            "unknown key 'traffic_polcy'; did you mean 'traffic_policy'?",
        ),
        (GOOD + "timeout:\n  drain: 5\n", 8, "timeout", "did you mean 'timeouts'?"),
        # Nothing near: no guess.
        (GOOD + "    colour: blue\n", 8, "endpoints[0].colour", "unknown key 'colour'"),
        # `upstream_tls` is no typo of a missing `upstream`.
        (
            GOOD.replace("    upstream: http://127.0.0.1:9000\n", "    upstream_tls: {}\n"),
            5,
            "endpoints[0]",
            "missing required key 'upstream'",
        ),
    ],
)
def test_unknown_keys_are_reported_at_their_line_with_a_suggestion(
    tmp_path: Path, text: str, line: int, path: str, message: str
) -> None:
    err = error_of(tmp_path, text)
    assert err.location is not None
    assert (err.location.line, err.location.path) == (line, path), str(err)
    assert message in err.message, err.message
    if "colour" in text or "upstream_tls" in text:
        assert "did you mean" not in err.message


@pytest.mark.parametrize("word", ["yes", "no", "on", "y", "n", "Yes", "'true'"])
def test_access_log_yaml_1_1_booleans_are_errors_never_file_names(
    tmp_path: Path, word: str
) -> None:
    err = error_of(tmp_path, GOOD + f"access_log: {word}\n")
    assert err.location is not None and err.location.path == "access_log"
    assert "is not a boolean in YAML 1.2: write true (standard output), false" in err.message
    assert list(tmp_path.iterdir()) == [tmp_path / "edge.yml"]  # no file named `yes`


@pytest.mark.parametrize(
    ("value", "enabled", "path"),
    [("true", True, None), ("stdout", True, None), ("false", False, None), ("off", False, None)],
)
def test_access_log_true_is_standard_output(
    tmp_path: Path, value: str, enabled: bool, path: Path | None
) -> None:
    config = load_config(write(tmp_path, GOOD + f"access_log: {value}\n"))
    assert (config.access_log.enabled, config.access_log.path) == (enabled, path)


@pytest.mark.parametrize(
    ("section", "value", "message"),
    [
        ("limits:\n  max_body_bytes: -1", "", "must be 0 bytes or more, not -1 bytes"),
        ("limits:\n  max_header_bytes: 8k", "", "must be a number of bytes, not '8k'"),
        ("limits:\n  max_header_count: -3", "", "must be 0 or more, not -3"),
        ("limits:\n  h2_reset_window: 0", "", "must be more than 0s, not 0s"),
        ("timeouts:\n  keep_alive: 0", "", "must be more than 0s, not 0s"),
        ("timeouts:\n  drain: 30s", "", "must be a number of seconds, not '30s'"),
    ],
)
def test_limits_are_reported_with_their_units(
    tmp_path: Path, section: str, value: str, message: str
) -> None:
    err = error_of(tmp_path, GOOD + section + value + "\n")
    assert err.message == message
