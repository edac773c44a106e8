"""`python -m bench proxy`: edgeward against nginx as a reverse proxy.

Everything is started here: an nginx upstream (a small body and a 64 KiB
one), nginx as reverse proxy (1 worker, keep-alive pool to the upstream) as
the baseline, and edgeward (1 worker; also the h11 codec and `--workers 2`)
in front of the same upstream. wrk drives HTTP/1.1 keep-alive, h2load
HTTP/2 (cleartext prior knowledge on both). Each case runs `--repeat` times;
the table shows the median run's req/s, p50/p99 latency, and the ratio to
nginx measured in the same run. It also shows the CPU time the proxy
process (with its workers) spent per request during the run: on a machine
shared with other work, req/s follows the load, CPU per request much less.

    python -m bench proxy [--duration 5] [--repeat 3] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from edgeward.bench.load import Result, h2load, median_run, wrk
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
    h1: dict[tuple[str, str], Result] = {}
    h2: dict[str, Result] = {}
    print(
        f"bench proxy: wrk -t1 -c{c}, h2load -c8 -m16, {d:g}s x {n} runs, median run shown",
        flush=True,
    )
    with nginx("upstream", UPSTREAM.format(port=up, work=WORK), [up]):
        with nginx("proxy", PROXY.format(port=ngx, h2port=ngx_h2, upstream=up), [ngx, ngx_h2]) as p:
            for path in ("small", "64k"):
                url = f"http://127.0.0.1:{ngx}/{path}"
                h1[("nginx", path)] = median_run(wrk, n, url, d, c, p.pid)
            h2["nginx"] = median_run(h2load, n, f"http://127.0.0.1:{ngx_h2}/small", d, 8, p.pid)
        with edgeward(edge, up) as p:
            for path in ("small", "64k"):
                url = f"http://127.0.0.1:{edge}/{path}"
                h1[("edgeward", path)] = median_run(wrk, n, url, d, c, p.pid)
            h2["edgeward"] = median_run(h2load, n, f"http://127.0.0.1:{edge}/small", d, 8, p.pid)
        with edgeward(edge_h11, up, "--http1", "h11") as p:
            url = f"http://127.0.0.1:{edge_h11}/small"
            h1[("edgeward --http1 h11", "small")] = median_run(wrk, n, url, d, c, p.pid)
        with edgeward(edge_2, up, "--workers", "2") as p:
            url = f"http://127.0.0.1:{edge_2}/small"
            h1[("edgeward --workers 2", "small")] = median_run(wrk, n, url, d, c, p.pid)

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
