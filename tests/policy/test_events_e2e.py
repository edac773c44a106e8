"""`events:` end to end: a real `edgeward serve` in front of a real upstream,
driven by httpx. Decisions land where the edge config says (and nowhere
with `off`), a sink that cannot write changes no decision and is logged
once, and a reload neither reopens the file nor keeps one it stopped
naming."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.policy.e2e import echo_headers, serve
from tests.policy.test_events_config import open_fds
from tests.proxy.proxy_support import Edge, start_edge

CONFIG = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - name: app
    hostname: 127.0.0.1
    upstream: {upstream}
    traffic_policy:
      on_http_request:
        - name: no admin
          expressions:
            - req.url.path.startsWith('/admin')
          actions:
            - type: deny
              config:
                status_code: 403
        - name: audit writes
          expressions:
            - req.method == 'POST'
          actions:
            - type: log
              config:
                metadata:
                  audit: write
events: {events}
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve({"/": echo_headers, "/orders": echo_headers}) as server:
        yield server.url


@pytest.fixture
def edge_with(
    tmp_path: Path, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], Edge]]:
    monkeypatch.delenv("EDGEWARD_POLICY_EVENTS", raising=False)  # the config alone decides
    started: list[Edge] = []

    def start(events: str) -> Edge:
        edge = start_edge(tmp_path, CONFIG, upstream=upstream, events=events)
        started.append(edge)
        return edge

    yield start
    for edge in started:
        edge.stop()


def lines(path: Path) -> list[dict[str, object]]:
    """The events in `path`, once it stops growing: they are written by
    the output's thread, which gathers what comes within 50 ms."""
    text, deadline = path.read_text(), time.monotonic() + 3
    while time.monotonic() < deadline:
        time.sleep(0.15)
        again = path.read_text()
        if again == text:
            break
        text = again
    return [json.loads(line) for line in text.splitlines()]


def until(predicate: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def exchange(edge: Edge) -> tuple[httpx.Response, httpx.Response]:
    """A denied GET and a logged POST, on a connection of their own."""
    with httpx.Client(base_url=edge.url(), timeout=10) as client:
        denied = client.get("/admin/users")
        logged = client.post("/orders", content=b"{}")
    assert denied.status_code == 403 and logged.status_code == 200
    return denied, logged


def test_decisions_land_in_the_file_named_by_events(
    tmp_path: Path, edge_with: Callable[..., Edge]
) -> None:
    edge = edge_with("events.jsonl")
    denied, logged = exchange(edge)
    events = lines(tmp_path / "events.jsonl")
    assert [(e["rule"], e["verdict"], e["request_id"]) for e in events] == [
        ("no admin", "deny", denied.headers["edgeward-request-id"]),
        ("audit writes", "log", logged.headers["edgeward-request-id"]),
    ]
    assert events[0]["status"] == 403 and events[0]["endpoint"] == "app"
    assert '"verdict"' not in edge.log_text()  # not on stdout: the config named a file


def test_off_writes_no_event_anywhere(tmp_path: Path, edge_with: Callable[..., Edge]) -> None:
    edge = edge_with("off")
    exchange(edge)
    edge.stop()
    assert '"verdict"' not in edge.log_text()
    assert not list(tmp_path.glob("*.jsonl"))


def test_an_unwritable_sink_changes_no_decision_and_is_logged_once(
    tmp_path: Path, edge_with: Callable[..., Edge]
) -> None:
    edge = edge_with("[/dev/full, events.jsonl]")
    for _ in range(3):
        exchange(edge)
    assert len(lines(tmp_path / "events.jsonl")) == 6  # (and the log has settled)
    log = edge.log_text()
    assert log.count("policy events: cannot write to /dev/full") == 1, log
    assert "No space left on device" in log and "Traceback" not in log
    assert len(lines(tmp_path / "events.jsonl")) == 6  # the other sink got every event
    assert edge.stop() == 0
    assert "Traceback" not in edge.log_text()


def test_reload_keeps_the_handle_and_closes_a_file_no_longer_named(
    tmp_path: Path, edge_with: Callable[..., Edge]
) -> None:
    edge = edge_with("a.jsonl")
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    pid = edge.proc.pid

    def reload(events: str) -> None:
        text = edge.config.read_text()
        edge.config.write_text(text[: text.index("events:")] + f"events: {events}\n")
        reloads = edge.log_text().count("reloaded")
        edge.signal(signal.SIGHUP)
        until(lambda: edge.log_text().count("reloaded") > reloads, "no reload")

    exchange(edge)
    assert open_fds(pid, first) == 1
    for _ in range(3):
        reload("a.jsonl")
        exchange(edge)
    assert open_fds(pid, first) == 1  # the same handle, not one per reload
    assert len(lines(first)) == 8

    reload("b.jsonl")
    exchange(edge)
    assert len(lines(first)) == 8 and len(lines(second)) == 2
    assert open_fds(pid, second) == 1
    # The next reload drops the generation that named b.jsonl, and its file.
    # (Not a.jsonl: `edgeward serve` keeps the config it started with.)
    reload("c.jsonl")
    exchange(edge)
    until(lambda: open_fds(pid, second) == 0, "b.jsonl is still open")
    assert len(lines(second)) == 2 and len(lines(tmp_path / "c.jsonl")) == 2
