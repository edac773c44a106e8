"""examples/edge.yml, what `make run` serves, does what its comments say:
the config loads with its policy, and every `curl` line of its comments,
run with curl against a real `edgeward serve` of it in front of
examples/upstream.py, answers as commented, with the events it names on
the edge's stdout."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.policy.e2e import BACKENDS, events
from tests.proxy.proxy_support import Edge, free_port, start_edge, wait_port

from edgeward.config import load_config
from edgeward.policy import compile_hooks

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "edge.yml"
CURL = shutil.which("curl")


@dataclass(frozen=True)
class Command:
    args: list[str]
    status: int  # the `# NNN` of the comment; 200 when it says none
    event: str | None  # "deny" for "a deny event"


def commented_commands() -> list[Command]:
    out = []
    for line in EXAMPLE.read_text().splitlines():
        command, _, note = line.removeprefix("#").strip().partition("#")
        if not command.startswith("curl "):
            continue
        status = re.match(r"\s*(\d{3})\b", note)
        event = re.search(r"an? (\w+) event", note)
        out.append(
            Command(
                shlex.split(command),
                int(status.group(1)) if status else 200,
                event.group(1) if event else None,
            )
        )
    return out


def test_the_example_loads_with_its_policy_and_events_on_stdout() -> None:
    config = load_config(EXAMPLE, compile_hooks)
    assert config.events == ("stdout",)
    app = next(e for e in config.endpoints if e.name == "app")
    assert app.policy is not None and app.hostname == "localhost"
    assert app.policy_source is not None and app.policy_source.document.file == str(
        ROOT / "examples" / "policies" / "edge-demo.yml"
    )
    commands = commented_commands()
    assert len(commands) >= 4 and {c.event for c in commands} >= {"deny", "log"}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    log = (tmp_path_factory.mktemp("upstream") / "upstream.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "upstream.py"), "--port", str(port)],
        stdout=log,
        stderr=log,
    )
    try:
        wait_port(port, proc=proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)
        log.close()


@pytest.fixture(scope="module", params=BACKENDS)
def edge(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, upstream: int
) -> Iterator[Edge]:
    """The example as is, but on free ports and with its policy file named
    absolutely (the config is written elsewhere)."""
    text = (
        EXAMPLE.read_text()
        .replace("{", "{{")
        .replace("}", "}}")
        .replace("127.0.0.1:8080", "127.0.0.1:{port_public}")
        .replace("127.0.0.1:9080", f"127.0.0.1:{upstream}")
        .replace("policies/edge-demo.yml", str(ROOT / "examples" / "policies" / "edge-demo.yml"))
    )
    assert text.count("{port_public}") == 1 and str(upstream) in text
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EDGEWARD_BACKEND", request.param)  # start_edge passes it on
        running = start_edge(tmp_path_factory.mktemp("example"), text, listeners=["public"])
    yield running
    running.stop()


def stdout_events(edge: Edge) -> list[dict[str, object]]:
    """The policy events among the lines (the access log and the server
    log are JSON too), once the log has settled."""
    return events(edge)


def test_the_commented_curl_lines_answer_as_commented(edge: Edge) -> None:
    if CURL is None:
        pytest.skip("curl not installed")
    for command in commented_commands():
        args = [a.replace("localhost:8080", f"localhost:{edge.port}") for a in command.args]
        done = subprocess.run(
            [
                CURL,
                *args[1:],
                "-sS",
                "-o",
                "/dev/null",
                "-D",
                "-",
                "-w",
                "%{http_code}",
                "--resolve",
                f"localhost:{edge.port}:127.0.0.1",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=15,
        )
        head, status = done.stdout.rsplit("\n", 1)
        assert int(status) == command.status, (command, done.stdout)
        assert "x-frame-options: deny" in head.lower(), head  # the policy's response headers
        request_id = re.search(r"(?i)edgeward-request-id: (\S+)", head)
        assert request_id is not None
        if command.event:
            assert any(
                e["verdict"] == command.event and e["request_id"] == request_id.group(1)
                for e in stdout_events(edge)
            ), (command, edge.log_text())


def test_a_client_gets_100_requests_a_minute(edge: Edge) -> None:
    """Last in the module: it uses up this client's allowance."""
    with (
        httpx.Client(base_url=edge.url(), headers={"host": "localhost"}, timeout=10) as client,
        ThreadPoolExecutor(8) as pool,
    ):
        answers = list(pool.map(lambda _: client.get("/hello"), range(101)))
    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) == {200, 429} and statuses[200] <= 100, statuses
    limited = next(a for a in answers if a.status_code == 429)
    assert int(limited.headers["retry-after"]) > 0
    assert limited.headers["x-frame-options"] == "DENY"
    assert any(e["action"] == "rate-limit" for e in stdout_events(edge))
    # the other endpoint has no policy
    with httpx.Client(base_url=edge.url(), headers={"host": "a.localhost"}, timeout=10) as other:
        assert other.get("/hello").status_code == 200
