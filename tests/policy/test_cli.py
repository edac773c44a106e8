"""`edgeward policy check` and `edgeward policy test` on the examples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgeward.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
POLICIES = sorted(p for p in EXAMPLES.glob("*.yml") if not p.name.endswith(".cases.yml"))


def test_every_example_has_cases() -> None:
    assert len(POLICIES) >= 4
    for policy in POLICIES:
        assert policy.with_suffix(".cases.yml").exists(), policy


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.stem)
def test_examples_check_and_pass_their_cases(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["policy", "check", str(policy)]) == 0, capsys.readouterr().out
    assert main(["policy", "test", str(policy), str(policy.with_suffix(".cases.yml"))]) == 0, (
        capsys.readouterr().out
    )
    out = capsys.readouterr().out
    assert " 0 failed" in out and "FAILED" not in out


def test_check_reports_located_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on_http_request:\n"
        "  - name: broken\n"
        '    expressions: ["req.url.path.startsWith("]\n'
        "    actions: [{type: saml, config: {}}]\n"
    )
    assert main(["policy", "check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:3:" in out and "on_http_request[0] 'broken'" in out
    assert "'saml' is not supported" in out and "2 error(s)" in out


def test_failing_expectation_fails_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.yml"
    policy.write_text("on_http_request: [{name: nope, actions: [{type: deny}]}]\n")
    cases = tmp_path / "c.yml"
    cases.write_text(
        "cases:\n"
        "  - name: expects a pass\n"
        "    request: {url: 'https://a.example/'}\n"
        "    expect: {status: 200}\n"
    )
    assert main(["policy", "test", str(policy), str(cases)]) == 1
    out = capsys.readouterr().out
    assert "rule nope: matched" in out and "deny: answered 403 (deny" in out
    assert "FAIL status: expected 200, got 403" in out and "0 passed, 1 failed" in out


def test_console_script() -> None:
    policy = POLICIES[0]
    done = subprocess.run(
        [sys.executable, "-m", "edgeward.cli", "policy", "check", str(policy)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "ok" in done.stdout


def test_client_ip_defaults_to_a_documentation_address_and_a_case_can_set_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.yml"
    policy.write_text(
        "on_http_request:\n  - actions: [{type: restrict-ips, config: {allow: [203.0.113.0/24]}}]\n"
    )
    cases = tmp_path / "c.yml"
    cases.write_text(
        "cases:\n"
        "  - name: no client_ip\n"
        "    request: {url: 'https://a.example/'}\n"
        "    expect: {status: 403}\n"
        "  - name: an allowed client\n"
        "    request: {url: 'https://a.example/', client_ip: 203.0.113.5}\n"
        "    expect: {forwarded: true}\n"
    )
    assert main(["policy", "test", str(policy), str(cases)]) == 0, capsys.readouterr().out
    assert "IP 192.0.2.1 is not allowed" in capsys.readouterr().out
    # --client-ip changes the default only: the first case is now let through.
    args = ["policy", "test", "--client-ip", "203.0.113.9", str(policy), str(cases)]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "FAIL status: expected 403, got 200" in out and "1 passed, 1 failed" in out
    cases.write_text("cases:\n  - request: {url: 'https://a.example/', client_ip: nowhere}\n")
    assert main(["policy", "test", str(policy), str(cases)]) == 1
    assert f"{cases}:2:" in capsys.readouterr().out


def test_policy_test_help_names_the_default_client_address() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edgeward.cli", "policy", "test", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "192.0.2.1" in done.stdout and "--client-ip" in done.stdout
