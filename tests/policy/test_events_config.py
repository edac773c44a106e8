"""The edge config's `events:` key (where policy decision events go) and the
sinks `PolicyCompiler` makes for it: one per target, shared by every policy
and across reloads, opened at the first event, closed when no policy holds
it, and never able to change a decision."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgeward.config import load_config
from edgeward.errors import ConfigError
from edgeward.linefile import flush_all
from edgeward.policy import PolicyCompiler, PolicyEvent
from edgeward.policy.events import JsonLinesSink, NullSink

GOOD = """\
listeners:
  - name: web
    address: 127.0.0.1:8080
endpoints:
  - name: app
    hostname: app.example.com
    upstream: http://127.0.0.1:9000
    traffic_policy:
      on_http_request: [{name: no, actions: [{type: deny}]}]
"""


def write(directory: Path, events: str | None) -> Path:
    path = directory / "edge.yml"
    path.write_text(GOOD + (f"events: {events}\n" if events is not None else ""))
    return path


def event(rule: str = "r") -> PolicyEvent:
    return PolicyEvent(1.0e9, "app", "on_http_request", rule, "deny", "deny", "x", "1.2.3.4", None)


def open_fds(pid: int, path: Path) -> int:
    """How many descriptors of process `pid` are open on `path`."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed since the listing
            count += os.readlink(fd) == str(path)
    return count


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),  # absent: EDGEWARD_POLICY_EVENTS decides
        ("", None),  # `events:` with nothing, the same
        ("stdout", ("stdout",)),
        ("stderr", ("stderr",)),
        ("events.jsonl", ("{dir}/events.jsonl",)),
        ("./logs/../events.jsonl", ("{dir}/events.jsonl",)),
        ("/dev/null", ("/dev/null",)),
        ("[stdout, events.jsonl, stderr]", ("stdout", "{dir}/events.jsonl", "stderr")),
        ("off", ()),
        ("false", ()),
    ],
)
def test_accepted_forms(tmp_path: Path, value: str | None, expected: tuple[str, ...]) -> None:
    (tmp_path / "logs").mkdir()
    config = load_config(write(tmp_path, value))
    want = None if expected is None else tuple(t.format(dir=tmp_path) for t in expected)
    assert config.events == want
    (endpoint,) = config.endpoints
    assert endpoint.policy_source is not None and endpoint.policy_source.events == want


def test_file_targets_are_relative_to_the_config_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    write(tmp_path / "conf", "events.jsonl")
    monkeypatch.chdir(tmp_path)
    config = load_config("conf/edge.yml")
    assert config.events == (str(tmp_path / "conf" / "events.jsonl"),)


@pytest.mark.parametrize(
    ("value", "key", "words"),
    [
        ("3", "events", "not an integer"),
        ("true", "events", "not a boolean"),
        ("on", "events", "not 'on'"),  # YAML 1.2: text, not a file named "on"
        ("{file: x}", "events", "not a mapping"),
        ("[]", "events", "empty list"),
        ("[stdout, 3]", "events[1]", "not an integer"),
        ("[stdout, off]", "events[1]", "off stands alone"),
        ("missing/events.jsonl", "events", "directory not found"),
        ("[stdout, logs]", "events[1]", "is a directory"),
        ("[a.jsonl, stderr, ./a.jsonl]", "events[2]", "listed twice"),
        ("[stdout, stdout]", "events[1]", "listed twice"),
    ],
)
def test_bad_values_name_file_line_and_key(
    tmp_path: Path, value: str, key: str, words: str
) -> None:
    (tmp_path / "logs").mkdir()
    path = write(tmp_path, value)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.location is not None
    assert (err.location.file, err.location.line, err.location.path) == (str(path), 10, key)
    assert words in err.message
    assert str(err).startswith(f"{path}:10:")


def test_sinks_are_shared_per_target_and_opened_at_the_first_event(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    compiler = PolicyCompiler()
    config = load_config(write(tmp_path, f"[{events}]"), compiler)
    again = load_config(write(tmp_path, f"[stderr, {events}]"), compiler)  # a reload
    assert not events.exists()  # loading (`edgeward check`) creates nothing
    policies = [config.endpoints[0].policy, again.endpoints[0].policy]
    assert all(p is not None for p in policies)
    first = compiler.sink([str(events)])
    assert isinstance(first, JsonLinesSink)
    first.emit(event("one"))
    compiler.sink(["stderr", str(events)]).emit(event("two"))
    flush_all()  # written by the output's thread
    assert [json.loads(line)["rule"] for line in events.read_text().splitlines()] == [
        "one",
        "two",
    ]
    assert open_fds(os.getpid(), events) == 1  # one handle for every policy that names the file

    del config, again, policies, first
    gc.collect()
    assert open_fds(os.getpid(), events) == 0  # no policy holds the sink: its file is closed


def test_off_and_the_environment_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compiler = PolicyCompiler()
    assert isinstance(compiler.sink(()), NullSink)
    fallback = tmp_path / "from-env.jsonl"
    monkeypatch.setenv("EDGEWARD_POLICY_EVENTS", f" {fallback} ")
    config = load_config(write(tmp_path, None), compiler)
    policy = config.endpoints[0].policy
    assert policy is not None
    policy.events.emit(event())  # type: ignore[attr-defined]
    flush_all()
    assert len(fallback.read_text().splitlines()) == 1


def test_a_sink_that_cannot_write_drops_events_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "later" / "events.jsonl"
    sink = JsonLinesSink(target)
    with caplog.at_level(logging.ERROR, logger="edgeward.policy"):
        sink.emit(event("lost"))  # the directory is not there: no exception
        sink.emit(event("lost too"))
        sink.flush()
        assert [r.getMessage() for r in caplog.records] == [
            f"policy events: cannot write to {target} (dropped): "
            f"[Errno 2] No such file or directory: '{target}'"
        ]
        target.parent.mkdir()
        sink.emit(event("kept"))
        sink.flush()
    assert [json.loads(line)["rule"] for line in target.read_text().splitlines()] == ["kept"]

    full = JsonLinesSink(Path("/dev/full"))
    with caplog.at_level(logging.ERROR, logger="edgeward.policy"):
        caplog.clear()
        for _ in range(5):
            full.emit(event())
        full.flush()
    assert len(caplog.records) == 1 and "No space left on device" in caplog.text


def test_check_creates_no_event_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[stdout, events.jsonl]")
    done = subprocess.run(
        [sys.executable, "-m", "edgeward.cli", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edge.yml"]
