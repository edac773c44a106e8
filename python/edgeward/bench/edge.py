"""`edgeward bench edge`: a real edge's throughput with one endpoint's
policy and without it, in one run.

From the operator's edge config two configs are derived (`derive`): every
listener on a free loopback port, no admin listener or agent ingress, the
endpoint's upstream replaced by the built-in upstream
(`edgeward.bench.upstream`); the second also without the endpoint's
`traffic_policy`/`traffic_policy_file`. They are written beside the
original (paths in a config are relative to its file) under hidden names,
and removed afterwards. Both edges run at once as `edgeward serve`; wrk
(HTTP/1.1) or h2load (HTTP/2) drives them in turn, alternating, so that a
change in the machine's load weighs on both alike; the CPU time of each
edge process comes from /proc.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edgeward.bench.load import Progress, Result, h2load, median, require, wrk
from edgeward.bench.processes import free_port, interpreter, running
from edgeward.config import EdgeConfig, Endpoint
from edgeward.document import load_document
from edgeward.errors import ConfigError

WITH, WITHOUT = "with policy", "without policy"


@dataclass(frozen=True, slots=True)
class Plan:
    """What is measured: which endpoint, reached how."""

    config: Path
    endpoint: str
    hostname: str  # the Host the requests carry
    listener: str  # the listener they arrive on
    scheme: str  # http or https (the listener has TLS)
    raw: Any  # the config as parsed, to derive from


def plan(config_path: Path, endpoint: str | None, config: EdgeConfig) -> Plan:
    """Pick the endpoint (by name; default the first with a policy) and
    how to reach it; `ConfigError` when that cannot be done."""
    endpoints = {e.name: e for e in config.endpoints}
    chosen: Endpoint | None
    if endpoint is not None:
        chosen = endpoints.get(endpoint)
        if chosen is None:
            raise ConfigError(
                f"no endpoint named {endpoint!r} (endpoints: {', '.join(endpoints) or 'none'})",
                None,
            )
    else:
        chosen = next((e for e in config.endpoints if e.policy_source is not None), None)
        if chosen is None:
            raise ConfigError(
                "no endpoint has a traffic policy: nothing to compare (give --endpoint NAME"
                " of an endpoint with traffic_policy or traffic_policy_file)",
                None,
            )
    if chosen.policy_source is None:
        raise ConfigError(f"endpoint {chosen.name!r} has no traffic policy to compare", None)
    if not chosen.listeners:
        raise ConfigError(f"endpoint {chosen.name!r} is on no listener (internal)", None)
    listener = next(item for item in config.listeners if item.name == chosen.listeners[0])
    hostname = chosen.hostname
    if hostname.startswith("*."):
        hostname = "bench" + hostname[1:]
    raw = load_document(config_path, what="edge config").data
    return Plan(
        config_path,
        chosen.name,
        hostname,
        listener.name,
        "https" if listener.tls is not None else "http",
        raw,
    )


def derive(
    plan: Plan, ports: dict[str, int], upstream: int, *, with_policy: bool
) -> dict[str, Any]:
    """The config one bench edge serves (see the module's docstring)."""
    data: dict[str, Any] = copy.deepcopy(dict(plan.raw))
    for listener in data.get("listeners") or ():
        listener["address"] = f"127.0.0.1:{ports[listener['name']]}"
    for key in ("admin", "agent_ingress"):
        data.pop(key, None)
    for endpoint in data.get("endpoints") or ():
        if (endpoint.get("name") or endpoint.get("hostname", "").lower()) != plan.endpoint:
            continue
        endpoint["upstream"] = f"http://127.0.0.1:{upstream}"
        endpoint.pop("upstream_tls", None)
        if not with_policy:
            endpoint.pop("traffic_policy", None)
            endpoint.pop("traffic_policy_file", None)
    return data


@dataclass
class EdgeRuns:
    """The runs of one edge: its median run and its CPU per request."""

    runs: list[Result] = field(default_factory=list)

    @property
    def median(self) -> Result:
        return median(self.runs)

    @property
    def cpu_us(self) -> float:
        served = sum(r.requests for r in self.runs)
        return sum(r.cpu_us * r.requests for r in self.runs) / served if served else 0.0

    def as_json(self) -> dict[str, Any]:
        median = self.median
        return {
            "rps": median.rps,
            "p50_ms": median.p50_ms,
            "p99_ms": median.p99_ms,
            "cpu_us_per_request": self.cpu_us,
            "requests": sum(r.requests for r in self.runs),
            "non_2xx": sum(r.non_2xx for r in self.runs),
            "errors": sum(r.errors for r in self.runs),
            "runs_rps": [r.rps for r in self.runs],
        }


@dataclass(frozen=True, slots=True)
class Options:
    duration: float = 5.0
    repeat: int = 3
    connections: int = 32
    path: str = "/"
    headers: tuple[str, ...] = ()
    http2: bool = False
    warmup: float = 1.0


Announce = Callable[[str, int, int, float], Progress]
"""Told each run's label, its number, how many and its length; gives the
progress callback of that run."""


def measure(plan: Plan, options: Options, announce: Announce) -> dict[str, Any]:
    """Start the upstream and both edges, drive them in turn, and give the
    results as plain data (`--json`)."""
    tool = "h2load" if options.http2 else "wrk"
    require(tool, f"edgeward bench edge{' --http2' if options.http2 else ''}")
    runs = {WITH: EdgeRuns(), WITHOUT: EdgeRuns()}
    headers = request_headers(plan.hostname, options.headers, http2=options.http2)
    with tempfile.TemporaryDirectory(prefix="edgeward-bench-") as tmp, ExitStack() as stack:
        logs = Path(tmp)
        up = free_port()
        stack.enter_context(
            running(
                [sys.executable, "-m", "edgeward.bench.upstream", str(up)],
                [up],
                logs / "upstream.log",
            )
        )
        procs = {}
        urls = {}
        for who in (WITH, WITHOUT):
            ports = {listener["name"]: free_port() for listener in plan.raw.get("listeners") or ()}
            data = derive(plan, ports, up, with_policy=who == WITH)
            path = stack.enter_context(_beside(plan.config, "policy" if who == WITH else "none"))
            path.write_text(
                json.dumps(data)
                if path.suffix == ".json"
                else yaml.safe_dump(data, sort_keys=False)
            )
            command = [sys.executable, "-m", "edgeward.cli", "serve", "--config", str(path)]
            command += ["--log-level", "warning", "--log-format", "json"]
            port = ports[plan.listener]
            log = logs / f"edge-{'policy' if who == WITH else 'none'}.log"
            try:
                procs[who] = stack.enter_context(running(command, [port], log, timeout=60))
            except (ChildProcessError, TimeoutError) as exc:
                raise EdgeFailed(f"the edge {who} did not start: {exc}", log) from None
            urls[who] = f"{plan.scheme}://127.0.0.1:{port}{options.path}"
        total = options.repeat * 2 + (2 if options.warmup > 0 else 0)
        number = 0

        def drive(who: str, seconds: float, label: str) -> Result:
            nonlocal number
            number += 1
            progress = announce(label, number, total, max(1.0, round(seconds)))
            pid = procs[who].pid
            if options.http2:
                return h2load(urls[who], seconds, 8, pid, headers, strict=False, progress=progress)
            return wrk(
                urls[who],
                seconds,
                options.connections,
                pid,
                headers,
                strict=False,
                progress=progress,
            )

        if options.warmup > 0:
            for who in (WITH, WITHOUT):
                drive(who, options.warmup, f"warm-up, {who}")
        for _ in range(options.repeat):
            for who in (WITH, WITHOUT):
                runs[who].runs.append(drive(who, options.duration, who))
    with_policy, without = runs[WITH], runs[WITHOUT]
    return {
        "config": str(plan.config),
        "endpoint": plan.endpoint,
        "host": plan.hostname,
        "path": options.path,
        "tool": tool,
        "protocol": "h2" if options.http2 else "http/1.1",
        "connections": 8 if options.http2 else options.connections,
        "duration_s": max(1, round(options.duration)),
        "repeat": options.repeat,
        "python": interpreter(),
        "edges": {"with_policy": with_policy.as_json(), "without_policy": without.as_json()},
        "ratio": with_policy.median.rps / without.median.rps if without.median.rps else None,
        "cpu_ratio": (without.cpu_us / with_policy.cpu_us if with_policy.cpu_us else None),
    }


def request_headers(hostname: str, headers: Sequence[str], *, http2: bool) -> tuple[str, ...]:
    """The headers the load generator sends: the endpoint's hostname as
    the authority unless the operator gave one. wrk replaces its own Host
    only when the name is spelt `Host` (else it would send two), h2load
    its `:authority`."""
    authority = ":authority" if http2 else "Host"
    host, rest = hostname, []
    for header in headers:
        colon = header.find(":", 1)  # a pseudo-header's name starts with one
        if header[:colon].strip().lower() in ("host", ":authority"):
            host = header[colon + 1 :].strip()
        else:
            rest.append(header)
    return (f"{authority}: {host}", *rest)


class EdgeFailed(RuntimeError):
    """A bench edge did not start; its log says why."""

    def __init__(self, message: str, log: Path) -> None:
        text = log.read_text(errors="replace").strip() if log.exists() else ""
        super().__init__(message + (f"\n{text}" if text else ""))


@contextlib.contextmanager
def _beside(config: Path, tag: str) -> Iterator[Path]:
    """A hidden file next to `config` (relative paths in it keep working),
    removed when the block ends."""
    path = config.resolve().parent / f".edgeward-bench-{os.getpid()}-{tag}{config.suffix}"
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def warnings(result: dict[str, Any]) -> Sequence[str]:
    """What makes the numbers mean less than they seem."""
    out = []
    for key, who in (("with_policy", WITH), ("without_policy", WITHOUT)):
        edge = result["edges"][key]
        if edge["requests"] and edge["non_2xx"] / edge["requests"] > 0.01:
            share = edge["non_2xx"] / edge["requests"] * 100
            out.append(
                f"{who}: {share:.0f}% of the answers were not 2xx/3xx (the policy answered"
                " the bench request itself? choose what is sent with --path and --header)"
            )
        if edge["errors"]:
            out.append(f"{who}: {edge['errors']} socket errors")
    return out
