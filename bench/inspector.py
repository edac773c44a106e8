"""`python -m bench inspector`: what the traffic inspector costs the proxy.

The set-up of `bench proxy` (an nginx upstream, wrk keep-alive on /small),
with an edge that has a state store and the admin API, so endpoints can be
inspected. Three cases, each `--repeat` times (median run shown):

- `off`: no endpoint is inspected (the hot path's one attribute check);
- `other`: another endpoint is inspected, not the one under load (one
  dictionary lookup more);
- `on`: the endpoint under load is inspected (every exchange captured,
  teed, redacted, kept in the ring).

`--cases off` runs on an edgeward without the inspector too (run it with
`PYTHONPATH` pointing at an older checkout's `python/`): the before/after
of `off` is the price every other endpoint pays.

    python -m bench inspector [--duration 5] [--repeat 3] [--connections 32]
                              [--cases off,other,on]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from contextlib import AbstractContextManager

from bench.proxy import UPSTREAM, WORK, nginx
from edgeward.bench.load import Result, median_run, wrk
from edgeward.bench.processes import free_port, running
from edgeward.bench.table import Table

EDGE = """
listeners:
  - name: bench
    address: 127.0.0.1:{port}
endpoints:
  - name: bench
    hostname: 127.0.0.1
    upstream: http://127.0.0.1:{upstream}
  - name: other
    hostname: other.example.com
    upstream: http://127.0.0.1:{upstream}
limits:
  max_connections: 100000
state_dir: {work}/inspector-state
api:
  address: 127.0.0.1:{api}
"""
CASES = ("off", "other", "on")


def edge(port: int, upstream: int, api: int) -> AbstractContextManager[subprocess.Popen[bytes]]:
    conf = WORK / f"edge-inspector-{port}.yml"
    conf.write_text(EDGE.format(port=port, upstream=upstream, api=api, work=WORK))
    cmd = [sys.executable, "-m", "edgeward.cli", "serve", "--config", str(conf)]
    return running([*cmd, "--log-level", "warning"], [port, api], WORK / f"edge-{port}.log")


def admin_key() -> str:
    out = subprocess.run(
        [sys.executable, "-m", "edgeward.cli", "api-key", "create", "--role", "admin",
         "--state-dir", str(WORK / "inspector-state"), "--json"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return str(json.loads(out)["token"])


def inspect(api: int, key: str, endpoint: str, enabled: bool) -> None:
    """Turn inspection of `endpoint` on or off, then wait for the edge's
    watcher to apply it (it polls the store every 250 ms)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{api}/endpoints/{endpoint}",
        data=json.dumps({"inspect": {"enabled": enabled}}).encode(),
        method="PATCH",
        headers={
            "authorization": f"Bearer {key}",
            "ngrok-version": "2",
            "content-type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    time.sleep(1.0)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench inspector", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args(argv)
    wanted = [c for c in args.cases.split(",") if c]
    if any(c not in CASES for c in wanted):
        sys.exit(f"--cases: known ones are {', '.join(CASES)}")
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"bench inspector needs {tool} (make system-deps)")
    WORK.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(WORK / "inspector-state", ignore_errors=True)
    d, n, c = args.duration, args.repeat, args.connections
    up, port, api = free_port(), free_port(), free_port()
    print(f"bench inspector: wrk -t1 -c{c} /small, {d:g}s x {n} runs, median run shown")
    results: dict[str, Result] = {}
    url = f"http://127.0.0.1:{port}/small"
    with nginx("upstream", UPSTREAM.format(port=up, work=WORK), [up]), edge(port, up, api) as p:
        key = admin_key() if set(wanted) - {"off"} else ""
        for case in wanted:
            if case == "other":
                inspect(api, key, "cfg_other", True)
            if case == "on":
                inspect(api, key, "cfg_bench", True)
            results[case] = median_run(wrk, n, url, d, c, p.pid)
    table = Table(
        "HTTP/1.1 keep-alive, /small",
        ["case", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "CPU x off"],
    )
    base = results.get("off")
    for case, r in results.items():
        ratio = r.cpu_us / base.cpu_us if base is not None else float("nan")
        table.add(case, r.rps, r.p50_ms, r.p99_ms, r.cpu_us, ratio)
    table.print()


__all__ = ["main"]
