"""`python -m bench proxy`: edgeward against nginx as a reverse proxy.

Everything is started here: an nginx upstream (a small body and a 64 KiB
one), nginx as reverse proxy (1 worker, keep-alive pool to the upstream) as
the baseline, and edgeward (1 worker; also the h11 codec and `--workers 2`)
in front of the same upstream. wrk drives HTTP/1.1 keep-alive, h2load
HTTP/2 (cleartext prior knowledge on both). Every proxy is up for the
whole run, and the cases run in `--repeat` rounds, each case once per
round, in turn (so that a change in the machine's load weighs on nginx and
edgeward alike); the table shows the median run's req/s, p50/p99 latency,
and the ratio to nginx measured in the same rounds. It also shows the CPU
time the proxy process (with its workers) spent per request during the
run: on a machine shared with other work, req/s follows the load, CPU per
request much less.

    python -m bench proxy [--duration 5] [--repeat 3] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from pathlib import Path

from edgeward.bench.load import Result, alternating, h2load, wrk
from edgeward.bench.processes import free_port, running
from edgeward.bench.table import Table

WORK = Path(__file__).resolve().parent / ".work" / "proxy"

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {work}/{name}.pid;
error_log {work}/{name}-error.log error;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {work}/tmp-body; proxy_temp_path {work}/tmp-proxy;
  fastcgi_temp_path {work}/tmp-fcgi; uwsgi_temp_path {work}/tmp-uwsgi;
  scgi_temp_path {work}/tmp-scgi;
  keepalive_requests 1000000;
  {body}
}}
"""

UPSTREAM = """
  server {{
    listen 127.0.0.1:{port};
    location = /small {{ default_type text/plain; return 200 "hello from upstream\\n"; }}
    location = /64k {{ root {work}; try_files /64k.bin =404; }}
  }}
"""

PROXY = """
  upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    listen 127.0.0.1:{h2port} http2;
    location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}
"""

EDGE = """
listeners:
  - name: bench
    address: 127.0.0.1:{port}
endpoints:
  - name: bench
    hostname: 127.0.0.1
    upstream: http://127.0.0.1:{upstream}
limits:
  max_connections: 100000
"""


def nginx(name: str, body: str, ports: list[int]) -> contextmanager[subprocess.Popen[bytes]]:  # type: ignore[type-arg]
    conf = WORK / f"{name}.conf"
    conf.write_text(NGINX_CONF.format(work=WORK, name=name, body=body))
    return running(["nginx", "-c", str(conf), "-p", str(WORK)], ports, WORK / f"{name}.log")


def edgeward(port: int, upstream: int, *args: str) -> contextmanager[subprocess.Popen[bytes]]:  # type: ignore[type-arg]
    conf = WORK / f"edge-{port}.yml"
    conf.write_text(EDGE.format(port=port, upstream=upstream))
    cmd = [
        sys.executable,
        "-m",
        "edgeward.cli",
        "serve",
        "--config",
        str(conf),
        "--log-level",
        "warning",
        *args,
    ]
    return running(cmd, [port], WORK / f"edge-{port}.log")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench proxy", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    for tool in ("nginx", "wrk", "h2load"):
        if shutil.which(tool) is None:
            sys.exit(f"bench proxy needs {tool} (make system-deps)")
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "64k.bin").write_bytes(os.urandom(64 * 1024))
    d, n, c = args.duration, args.repeat, args.connections
    up, ngx, ngx_h2 = free_port(), free_port(), free_port()
    edge, edge_h11, edge_2 = free_port(), free_port(), free_port()
    print(
        f"bench proxy: wrk -t1 -c{c}, h2load -c8 -m16, {d:g}s x {n} rounds, "
        "the cases alternating in each; median run shown",
        flush=True,
    )
    with ExitStack() as stack:
        stack.enter_context(nginx("upstream", UPSTREAM.format(port=up, work=WORK), [up]))
        ngx_pid = stack.enter_context(
            nginx("proxy", PROXY.format(port=ngx, h2port=ngx_h2, upstream=up), [ngx, ngx_h2])
        ).pid
        edge_pid = stack.enter_context(edgeward(edge, up)).pid
        h11_pid = stack.enter_context(edgeward(edge_h11, up, "--http1", "h11")).pid
        two_pid = stack.enter_context(edgeward(edge_2, up, "--workers", "2")).pid

        def http1(port: int, path: str, pid: int) -> Callable[[], Result]:
            return lambda: wrk(f"http://127.0.0.1:{port}/{path}", d, c, pid)

        def http2(port: int, pid: int) -> Callable[[], Result]:
            return lambda: h2load(f"http://127.0.0.1:{port}/small", d, 8, pid)

        runs = alternating(
            {
                ("nginx", "small"): http1(ngx, "small", ngx_pid),
                ("edgeward", "small"): http1(edge, "small", edge_pid),
                ("edgeward --http1 h11", "small"): http1(edge_h11, "small", h11_pid),
                ("edgeward --workers 2", "small"): http1(edge_2, "small", two_pid),
                ("nginx", "64k"): http1(ngx, "64k", ngx_pid),
                ("edgeward", "64k"): http1(edge, "64k", edge_pid),
                ("nginx", "h2c"): http2(ngx_h2, ngx_pid),
                ("edgeward", "h2c"): http2(edge, edge_pid),
            },
            n,
        )
    h1 = {case: r for case, r in runs.items() if case[1] != "h2c"}
    h2 = {who: r for (who, kind), r in runs.items() if kind == "h2c"}

    for path in ("small", "64k"):
        base = h1[("nginx", path)]
        table = Table(
            f"HTTP/1.1 keep-alive, /{path}",
            ["proxy", "req/s", "p50 ms", "p99 ms", "x nginx", "CPU µs/req", "CPU x nginx"],
        )
        for (who, p), r in h1.items():
            if p == path:
                table.add(
                    who,
                    r.rps,
                    r.p50_ms,
                    r.p99_ms,
                    r.rps / base.rps,
                    r.cpu_us,
                    r.cpu_us / base.cpu_us,
                )
        table.print()
    table = Table(
        "HTTP/2 (h2c), /small",
        ["proxy", "req/s", "mean ms", "max ms", "x nginx", "CPU µs/req"],
    )
    for who, r in h2.items():
        table.add(who, r.rps, r.p50_ms, r.p99_ms, r.rps / h2["nginx"].rps, r.cpu_us)
    table.print()
    fast, slow = h1[("edgeward", "small")].rps, h1[("edgeward --http1 h11", "small")].rps
    two = h1[("edgeward --workers 2", "small")].rps
    summary = Table("targets", ["measure", "value", "target"])
    summary.add("HTTP/1.1 small: edgeward / nginx", fast / h1[("nginx", "small")].rps, ">= 0.40")
    cpu = h1[("edgeward", "small")].cpu_us / h1[("nginx", "small")].cpu_us
    summary.add("HTTP/1.1 small: CPU per request, edgeward / nginx", cpu, "(lower is better)")
    summary.add("fast codec / h11 codec", fast / slow, ">= 3")
    summary.add("HTTP/2: edgeward / nginx", h2["edgeward"].rps / h2["nginx"].rps, ">= 0.40")
    summary.add("--workers 2 / --workers 1", two / fast, "(2 cores shared with wrk and nginx)")
    summary.print()
