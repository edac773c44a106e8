"""`python -m bench workers`: how `edgeward serve --workers N` scales, against
nginx with as many worker processes, with and without the 20-rule policy.

One trio process runs on one core; `--workers N` starts N processes that
share the listening port through SO_REUSEPORT (the kernel spreads the
connections). This case runs, in one run and alternating so that a change in
the machine's load weighs on all alike: nginx as reverse proxy with 1 and 2
worker processes, and edgeward with 1 and 2 workers, without a policy and
with `bench policy`'s 20-rule policy, all in front of one nginx upstream;
wrk -t1 drives HTTP/1.1 keep-alive small GETs. It prints the median run of
each, the ratio to nginx with the same number of workers, and the per-core
efficiency (req/s of N workers / (N × req/s of one)), and the policy's
target: one worker with it at half of one nginx worker or more (one trio
process's floor is below that: docs/proxy.md). On the 2-core machine
wrk and the upstream share the cores with the proxy, so two workers cannot
double: the nginx column shows what the machine allows.

    python -m bench workers [--duration 5] [--repeat 3] [--connections 32]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from contextlib import AbstractContextManager, ExitStack
from subprocess import Popen

from bench.proxy import EDGE, NGINX_CONF, PROXY, UPSTREAM, WORK, nginx
from edgeward.bench.load import Result, median, wrk
from edgeward.bench.processes import cpu_seconds, free_port, running
from edgeward.bench.table import Table

HERE = WORK.parent / "workers"


def nginx_proxy(port: int, upstream: int, workers: int) -> AbstractContextManager[Popen[bytes]]:
    """nginx as reverse proxy with `workers` worker processes."""
    body = PROXY.format(port=port, h2port=free_port(), upstream=upstream)
    conf = HERE / f"nginx-{workers}.conf"
    text = NGINX_CONF.format(work=HERE, name=f"nginx-{workers}", body=body)
    conf.write_text(text.replace("worker_processes 1;", f"worker_processes {workers};"))
    return running(
        ["nginx", "-c", str(conf), "-p", str(HERE)], [port], HERE / f"nginx-{workers}.log"
    )


def edge(
    port: int, upstream: int, workers: int, policy: str | None
) -> AbstractContextManager[Popen[bytes]]:
    conf = HERE / f"edge-{port}.yml"
    text = EDGE.format(port=port, upstream=upstream)
    if policy is not None:
        text = text.replace(
            f"    upstream: http://127.0.0.1:{upstream}\n",
            f"    upstream: http://127.0.0.1:{upstream}\n    traffic_policy_file: {policy}\n",
        )
    conf.write_text(text)
    cmd = [sys.executable, "-m", "edgeward.cli", "serve", "--config", str(conf)]
    cmd += ["--log-level", "warning", "--workers", str(workers)]
    return running(cmd, [port], HERE / f"edge-{port}.log")


def main(argv: list[str]) -> None:
    from bench.policy import policy_text

    parser = argparse.ArgumentParser(prog="python -m bench workers", description=__doc__)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"bench workers needs {tool} (make system-deps)")
    for directory in (WORK, HERE):
        directory.mkdir(parents=True, exist_ok=True)
    for tmp in ("tmp-body", "tmp-proxy", "tmp-fcgi", "tmp-uwsgi", "tmp-scgi"):
        (HERE / tmp).mkdir(exist_ok=True)
    policy = HERE / "policy.yml"
    text = policy_text()
    policy.write_text(text)
    rules = text.count("  - name: ")
    d, n, c = args.duration, args.repeat, args.connections
    print(
        f"bench workers: wrk -t1 -c{c}, {d:g}s x {n} runs per proxy, alternating; "
        f"median run shown; policy: {rules} rules",
        flush=True,
    )
    proxies = {
        "nginx, 1 worker": ("nginx", 1, None),
        "nginx, 2 workers": ("nginx", 2, None),
        "edgeward, 1 worker": ("edge", 1, None),
        "edgeward, 2 workers": ("edge", 2, None),
        f"edgeward + {rules}-rule policy, 1 worker": ("edge", 1, str(policy)),
        f"edgeward + {rules}-rule policy, 2 workers": ("edge", 2, str(policy)),
    }
    up = free_port()
    ports = {who: free_port() for who in proxies}
    runs: dict[str, list[Result]] = {who: [] for who in proxies}
    cpu: dict[str, float] = dict.fromkeys(proxies, 0.0)
    served: dict[str, float] = dict.fromkeys(proxies, 0.0)
    with ExitStack() as stack:
        stack.enter_context(nginx("upstream", UPSTREAM.format(port=up, work=WORK), [up]))
        procs: dict[str, Popen[bytes]] = {}
        for who, (kind, workers, path) in proxies.items():
            if kind == "nginx":
                started = nginx_proxy(ports[who], up, workers)
            else:
                started = edge(ports[who], up, workers, path)
            procs[who] = stack.enter_context(started)
        for _ in range(n):
            for who in proxies:
                before = cpu_seconds(procs[who].pid)
                result = wrk(f"http://127.0.0.1:{ports[who]}/small", d, c)
                cpu[who] += cpu_seconds(procs[who].pid) - before
                served[who] += result.rps * max(1, round(d))
                runs[who].append(result)
    med = {who: median(out) for who, out in runs.items()}
    table = Table(
        "HTTP/1.1 keep-alive, /small, by worker processes",
        [
            "proxy",
            "req/s",
            "p50 ms",
            "p99 ms",
            "x nginx (same workers)",
            "per-core eff.",
            "CPU us/req",
        ],
    )
    for who, (_, workers, path) in proxies.items():
        same = med[f"nginx, {workers} worker" + ("s" if workers > 1 else "")].rps
        one = next(
            w for w, (k, n1, p) in proxies.items() if n1 == 1 and p == path and k == proxies[who][0]
        )
        efficiency = med[who].rps / (workers * med[one].rps)
        table.add(
            who,
            med[who].rps,
            med[who].p50_ms,
            med[who].p99_ms,
            med[who].rps / same,
            efficiency,
            cpu[who] / max(served[who], 1) * 1e6,
        )
    table.print()
    summary = Table("target", ["measure", "value", "target"])
    with_policy = med[f"edgeward + {rules}-rule policy, 1 worker"].rps
    summary.add(
        f"{rules}-rule policy, 1 worker / nginx, 1 worker",
        with_policy / med["nginx, 1 worker"].rps,
        ">= 0.50",
    )
    summary.print()
