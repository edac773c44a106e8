"""`edgeward authtoken create | list | revoke`, run as a real process; the
tables of error cases call the same `main()` in-process (`run`) to spare a
Python start-up each, and one case of each exit code runs as a process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgeward.authtokens import snapshot
from edgeward.cli import main
from edgeward.store import Store, statedir
from edgeward.store.store import database_files

TOKEN = re.compile(r"^ewt_[a-z2-7]{16}_[A-Za-z0-9_-]{43}$", re.MULTILINE)


def edgeward(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgeward.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def run(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def test_create_prints_the_token_once_and_stores_only_its_hash(state: Path) -> None:
    done = edgeward(
        "authtoken", "create", "--description", "alice laptop",
        "--acl", "bind:*.alice.dev.example.com", "--acl", "bind:Alice.internal",
        "--state-dir", str(state),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (token,) = TOKEN.findall(done.stdout)
    id = "at_" + token[4:20]
    assert f"Created authtoken {id} (alice laptop)" in done.stdout
    assert "ACL: bind:*.alice.dev.example.com, bind:alice.internal" in done.stdout
    secret = token[21:]
    for file in database_files(state):  # the database and its WAL
        assert secret.encode() not in file.read_bytes(), file
    with Store.open(state) as store:
        found = snapshot.load(store).authenticate(token)
    assert found is not None and found.id == id and found.description == "alice laptop"
    listed = edgeward("authtoken", "list", "--state-dir", str(state))
    assert listed.returncode == 0 and id in listed.stdout and secret not in listed.stdout


def test_json_list_and_revoke(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def listing(*extra: str) -> str:
        code, out, _ = run("authtoken", "list", *extra, "--state-dir", str(state), capsys=capsys)
        assert code == 0
        return out

    created = json.loads(
        edgeward(
            "authtoken", "create", "--json", "--acl", "bind:alice.internal",
            "--metadata", '{"team": "a"}', "--state-dir", str(state),
        ).stdout
    )  # fmt: skip
    assert TOKEN.match(created["token"]) and created["revoked_at"] is None
    run("authtoken", "create", "--acl", "*", "--state-dir", str(state), capsys=capsys)
    listed = json.loads(listing("--json"))
    assert [t["acl"] for t in listed] == [["bind:alice.internal"], ["*"]]
    assert listed[0] == {k: v for k, v in created.items() if k != "token"}
    assert all("token" not in t and "token_hash" not in t for t in listed)

    revoked = edgeward("authtoken", "revoke", created["id"], "--state-dir", str(state))
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.startswith(f"Revoked authtoken {created['id']} at ")
    again = run("authtoken", "revoke", created["id"], "--state-dir", str(state), capsys=capsys)
    assert again == (0, revoked.stdout, "")  # the first time stays
    listed = json.loads(listing("--json"))
    assert listed[0]["revoked_at"] is not None and listed[1]["revoked_at"] is None
    table = listing().splitlines()
    assert table[0].split() == ["ID", "DESCRIPTION", "ACL", "CREATED", "REVOKED"]
    assert table[1].startswith(created["id"]) and table[2].endswith("-")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "--acl", "bind:foo*.example.com", "--acl", "nope"],
         "--acl #1 'bind:foo*.example.com', column 9: '*' stands only as a whole leftmost label"),
        (["create", "--acl", "bind:a", "--acl", "nope"], "--acl #2 'nope', column 1: "),
        (["create", "--acl", "*", "--description", "x" * 256], "description: at most 255 bytes"),
        (["create", "--acl", "*", "--metadata", "x" * 4097], "metadata: at most 4096 bytes"),
        (["revoke", "at_aaaaaaaaaaaaaaaa"], "no authtoken 'at_aaaaaaaaaaaaaaaa'"),
        (["revoke", "nonsense"], "no authtoken 'nonsense'"),
    ],
)  # fmt: skip
def test_invalid_input_exits_1(
    state: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run("authtoken", *args, "--state-dir", str(state), capsys=capsys)
    assert (code, out) == (1, ""), err
    assert message in err


def test_every_bad_rule_is_reported(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("create", "--acl", "x", "--acl", "bind:", "--state-dir", str(state))
    code, _, err = run("authtoken", *args, capsys=capsys)
    assert code == 1
    assert [line.split(" #")[1][:1] for line in err.splitlines()] == ["1", "2"]


@pytest.mark.parametrize(
    "args",
    [
        ["authtoken"],
        ["authtoken", "create"],  # no --acl: say '*' explicitly for an unrestricted token
        ["authtoken", "create", "--acl", "*", "--bogus"],
        ["authtoken", "revoke"],
        ["authtoken", "list", "--config", "edge.yml", "--state-dir", "x"],
    ],
)
def test_usage_errors_exit_2(
    state: Path,
    args: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(statedir.ENV, str(state))
    code, _, err = run(*args, capsys=capsys)
    assert code == 2, err
    assert not state.exists()  # nothing was written


def test_exit_codes_of_the_process(state: Path) -> None:
    usage = edgeward("authtoken", "create", "--state-dir", str(state))
    assert usage.returncode == 2 and "--acl '*'" in usage.stderr
    invalid = edgeward("authtoken", "create", "--acl", "bind:", "--state-dir", str(state))
    assert invalid.returncode == 1 and "--acl #1 'bind:', column 6" in invalid.stderr


def test_the_config_names_the_state_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "edge.yml"
    config.write_text(
        "state_dir: my-state\n"
        "listeners: [{name: public, address: '127.0.0.1:0'}]\n"
        "endpoints: [{hostname: a.example.com, upstream: 'http://127.0.0.1:9'}]\n"
    )
    done = edgeward("authtoken", "create", "--acl", "*", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "my-state" / statedir.DATABASE).exists()
    code, out, _ = run("authtoken", "list", "--json", "-c", str(config), capsys=capsys)
    assert code == 0 and len(json.loads(out)) == 1


def test_a_bad_config_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "edge.yml"
    config.write_text("state_dir: 3\nlisteners: []\n")
    code, _, err = run("authtoken", "list", "--config", str(config), capsys=capsys)
    assert code == 1 and "edge.yml:1:1: state_dir: must be a string" in err


def test_the_default_state_dir_comes_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"HOME": str(tmp_path / "home"), "XDG_STATE_HOME": "", statedir.ENV: ""}
    done = edgeward("authtoken", "create", "--acl", "*", env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "home" / ".local" / "state" / "edgeward" / statedir.DATABASE).exists()
    monkeypatch.setenv(statedir.ENV, str(tmp_path / "env"))
    assert run("authtoken", "create", "--acl", "*", capsys=capsys)[0] == 0
    assert (tmp_path / "env" / statedir.DATABASE).exists()


def test_a_store_error_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    code, _, err = run("authtoken", "list", "--state-dir", str(tmp_path / "file"), capsys=capsys)
    assert code == 1 and "not a directory" in err
