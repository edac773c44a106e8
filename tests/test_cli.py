"""The `edgeward` command line as a user runs it (a real process): every
subcommand's exit codes (0 ok, 1 invalid input, 2 usage), `--version`,
`check FILE`, and help text for every argument."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from edgeward.cli import build_parser, main, version

ROOT = Path(__file__).resolve().parents[1]
EDGE = ROOT / "examples" / "edge.yml"
POLICY = ROOT / "examples" / "policies" / "ip-allow-list.yml"
CASES = ROOT / "examples" / "policies" / "ip-allow-list.cases.yml"


def edgeward(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "edgeward.cli", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


@pytest.fixture
def bad_config(tmp_path: Path) -> Path:
    path = tmp_path / "edge.yml"
    path.write_text("listeners:\n  - name: web\n    address: nowhere\n")
    return path


@pytest.fixture
def bad_policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yml"
    path.write_text("on_http_request:\n  - actions: [{type: dney}]\n")
    return path


def test_version() -> None:
    done = edgeward("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"edgeward {version()}"
    assert version() != "unknown"


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("bogus",),
        ("--bogus",),
        ("check",),
        ("check", "--nope", EDGE),
        ("serve",),
        ("policy",),
        ("policy", "check"),
        ("policy", "test", POLICY),
        ("policy", "test", "--client-ip", "not-an-ip", POLICY, CASES),
        ("demo", "extra"),
    ],
    ids=lambda a: " ".join(map(str, a)) or "nothing",
)
def test_usage_errors_exit_2(
    args: tuple[str | Path, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main([str(a) for a in args])
    assert exit.value.code == 2
    assert "usage: edgeward" in capsys.readouterr().err


def test_a_usage_error_exits_2_without_a_traceback() -> None:
    done = edgeward("check")
    assert done.returncode == 2
    assert done.stderr.startswith("usage: edgeward check")
    assert "Traceback" not in done.stderr


def test_check_takes_the_file_positionally_or_with_config() -> None:
    for args in ((EDGE,), ("--config", EDGE), ("-c", EDGE)):
        done = edgeward("check", *args)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"{EDGE}: OK (1 listeners, 2 endpoints)\n"


def test_check_given_the_file_twice_is_a_usage_error() -> None:
    done = edgeward("check", EDGE, "--config", EDGE)
    assert done.returncode == 2
    assert "give the config file once" in done.stderr


def test_check_invalid_input_exits_1(bad_config: Path, tmp_path: Path) -> None:
    done = edgeward("check", bad_config)
    assert done.returncode == 1
    assert f"{bad_config}:3:" in done.stderr and "must be host:port" in done.stderr
    missing = edgeward("check", tmp_path / "nope.yml")
    assert missing.returncode == 1
    assert "config file not found" in missing.stderr
    assert "Traceback" not in done.stderr + missing.stderr


def test_serve_invalid_config_exits_1(bad_config: Path) -> None:
    done = edgeward("serve", "--config", bad_config)
    assert done.returncode == 1
    assert "must be host:port" in done.stderr


def test_policy_check_exit_codes(bad_policy: Path) -> None:
    assert edgeward("policy", "check", POLICY).returncode == 0
    done = edgeward("policy", "check", bad_policy)
    assert done.returncode == 1
    assert "unknown action type 'dney'" in done.stdout
    assert edgeward("policy", "check", bad_policy.with_name("nope.yml")).returncode == 1


def test_policy_test_exit_codes(tmp_path: Path, bad_policy: Path) -> None:
    assert edgeward("policy", "test", POLICY, CASES).returncode == 0
    deny = tmp_path / "deny.yml"
    deny.write_text("on_http_request: [{actions: [{type: deny}]}]\n")
    failing = tmp_path / "failing.cases.yml"
    failing.write_text("cases:\n  - request: {url: 'http://a.test/'}\n    expect: {status: 200}\n")
    done = edgeward("policy", "test", deny, failing)
    assert done.returncode == 1 and "0 passed, 1 failed" in done.stdout
    # Input that cannot run at all is invalid input too, not a usage error.
    assert edgeward("policy", "test", bad_policy, CASES).returncode == 1
    broken = tmp_path / "broken.cases.yml"
    broken.write_text("cases: nope\n")
    assert edgeward("policy", "test", POLICY, broken).returncode == 1


def test_demo_exits_0() -> None:
    assert edgeward("demo").returncode == 0


def _actions(parser: argparse.ArgumentParser, name: str) -> list[tuple[str, argparse.Action]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, subparser in action.choices.items():
                out += _actions(subparser, f"{name} {sub}")
        else:
            out.append((name, action))
    return out


def test_every_argument_of_every_subcommand_has_help() -> None:
    actions = _actions(build_parser(), "edgeward")
    assert len({name for name, _ in actions}) >= 6  # edgeward, demo, serve, check, policy ...
    missing = [
        f"{name}: {action.option_strings or action.dest}"
        for name, action in actions
        if not action.help and action.help != argparse.SUPPRESS
    ]
    assert not missing


def test_serve_freezes_what_imports_made_and_collects_the_young_rarely() -> None:
    """`edgeward serve` tunes the collector before it loads a config
    (in-process: a serving edge does not expose its collector)."""
    import gc

    from edgeward.proxy.cli import GC_YOUNG_THRESHOLD, _tune_collector

    threshold = gc.get_threshold()
    try:
        _tune_collector()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *threshold[1:])
        assert gc.get_freeze_count() > 10_000  # modules, classes, functions
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
