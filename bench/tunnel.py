"""`python -m bench tunnel`: a local app published through a tunnel.

One nginx upstream (a small body; a 1 GiB sparse file for bulk) serves
every case; all on 127.0.0.1:

- nginx as a reverse proxy (1 worker): the limit;
- `edgeward serve` with the upstream as a static endpoint: the edge direct;
- `edgeward serve` with an agent ingress and `edgeward agent http` (TLS
  between them): the edge through our agent;
- the same edge with the official `ngrok` SDK (PyPI) as the agent;
- rathole (`cargo install rathole` when missing; plain TCP transport, no
  TLS, no HTTP parsing): the plain-tunnel anchor.

Small requests: wrk -t1 -c32 on /small; req/s, p99, and the CPU time each
process (edge, agent) spent per request during the run. Bulk: one 1 GiB
download with curl, MB/s. Each case runs `--repeat` times, the median run
is shown. Targets (issue 10): the tunnel costs at most 25% of the edge's
direct throughput; small requests through our tunnel at least 0.30x
rathole's; bulk at least 300 MB/s.

    python -m bench tunnel [--duration 5] [--repeat 3] [--connections 32] [--no-bulk]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import proxy
from bench.proxy import nginx
from edgeward.bench.processes import cpu_seconds, free_port, running, wait_port
from edgeward.bench.table import Table

WORK = Path(__file__).resolve().parent / ".work" / "tunnel"
HOST = "app.bench.test"
BULK = 1 << 30

UPSTREAM = """
  server {{
    listen 127.0.0.1:{port};
    location = /small {{ default_type text/plain; return 200 "hello from upstream\\n"; }}
    location = /bulk {{ root {work}; try_files /bulk.bin =404; }}
  }}
"""

PROXY = """
  upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}
"""

EDGE = """
listeners:
  - name: bench
    address: 127.0.0.1:{port}
endpoints:
  - name: direct
    hostname: direct.bench.test
    upstream: http://127.0.0.1:{upstream}
agent_ingress:
  address: 127.0.0.1:{ingress}
  tls:
    certificates: [{{cert: {work}/ingress.pem, key: {work}/ingress-key.pem}}]
  domains: ["*.bench.test"]
state_dir: {work}/state
events: off
limits:
  max_connections: 100000
  max_body_bytes: 0
"""

SDK_AGENT = """
import asyncio, json, sys
import ngrok

async def main():
    o = json.loads(sys.argv[1])
    session = await (ngrok.SessionBuilder().authtoken(o["token"]).server_addr(o["server"])
                     .root_cas(o["ca"]).connect())
    listener = await session.http_endpoint().domain(o["domain"]).listen_and_forward(o["upstream"])
    print(listener.url(), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""

RATHOLE_SERVER = """
[server]
bind_addr = "127.0.0.1:{control}"
default_token = "bench"
[server.services.app]
bind_addr = "127.0.0.1:{port}"
"""

RATHOLE_CLIENT = """
[client]
remote_addr = "127.0.0.1:{control}"
default_token = "bench"
[client.services.app]
local_addr = "127.0.0.1:{upstream}"
"""


@dataclass
class Run:
    rps: float
    p99_ms: float
    cpu_us: dict[str, float] = field(default_factory=dict)  # by process name


@dataclass
class Case:
    name: str
    url: str
    host: str | None
    pids: dict[str, int]
    small: Run | None = None
    bulk_mbs: float | None = None


def wrk(url: str, host: str | None, duration: float, connections: int, pids: dict[str, int]) -> Run:
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    headers = ["-H", f"Host: {host}"] if host else []
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
         *headers, url],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    spent = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    cpu = {name: s * 1e6 / max(requests, 1) for name, s in spent.items()}
    return Run(rps, p99, cpu)


def bulk(url: str, host: str | None) -> float:
    """MB/s (10^6 bytes) of one 1 GiB download."""
    headers = ["-H", f"Host: {host}"] if host else []
    start = time.perf_counter()
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}", *headers, url],
        check=True, capture_output=True, text=True, timeout=600,
    ).stdout  # fmt: skip
    elapsed = time.perf_counter() - start
    if int(out) != BULK:
        raise RuntimeError(f"bulk download got {out} bytes")
    return BULK / elapsed / 1e6


def median(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.rps)[len(runs) // 2]


def measure(case: Case, args: argparse.Namespace) -> None:
    runs = [
        wrk(f"{case.url}/small", case.host, args.duration, args.connections, case.pids)
        for _ in range(args.repeat)
    ]
    case.small = median(runs)
    if not args.no_bulk:
        speeds = sorted(bulk(f"{case.url}/bulk", case.host) for _ in range(args.bulk_repeat))
        case.bulk_mbs = speeds[len(speeds) // 2]
    print(f"  {case.name}: {case.small.rps:,.0f} req/s"
          + (f", bulk {case.bulk_mbs:,.0f} MB/s" if case.bulk_mbs else ""), flush=True)  # fmt: skip


# --- processes -----------------------------------------------------------------------------


def edgeward(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgeward.cli", *args]


def make_certs() -> None:
    import trustme

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(WORK / "ca.pem"))
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(WORK / "ingress.pem"))
    cert.private_key_pem.write_to_path(str(WORK / "ingress-key.pem"))


@contextmanager
def edge(port: int, ingress: int, upstream: int) -> Iterator[subprocess.Popen[bytes]]:
    conf = WORK / "edge.yml"
    conf.write_text(EDGE.format(port=port, ingress=ingress, upstream=upstream, work=WORK))
    cmd = edgeward("serve", "--config", str(conf), "--log-level", "warning")
    with running(cmd, [port, ingress], WORK / "edge.log") as proc:
        yield proc


def token() -> str:
    out = subprocess.run(
        edgeward("authtoken", "create", "--state-dir", str(WORK / "state"), "--acl", "*", "--json"),
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return str(json.loads(out)["token"])


@contextmanager
def process(cmd: list[str], log: Path, ready: str, **kw: object) -> Iterator[subprocess.Popen[str]]:
    """A process whose stdout says `ready` (a regex) once it serves."""
    with log.open("w") as err:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.PIPE, text=True, **kw
        )  # type: ignore[call-overload]
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            if re.search(ready, line):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(ready)
        else:
            raise RuntimeError(f"{cmd[0]} exited: see {log}")
        yield proc
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rathole() -> str:
    found = shutil.which("rathole") or str(Path.home() / ".cargo" / "bin" / "rathole")
    if not os.path.exists(found):
        print("bench tunnel: installing rathole (cargo install, a few minutes)", flush=True)
        subprocess.run(
            ["cargo", "install", "rathole", "--no-default-features", "--features",
             "server,client"],
            check=True,
        )  # fmt: skip
    return found


# --- main ---------------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench tunnel", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bulk-repeat", type=int, default=1)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--no-bulk", action="store_true")
    parser.add_argument("--no-sdk", action="store_true", help="leave out the ngrok SDK agent")
    args = parser.parse_args(argv)
    for tool in ("nginx", "wrk", "curl"):
        if shutil.which(tool) is None:
            sys.exit(f"bench tunnel needs {tool} (make system-deps)")
    rathole_bin = rathole()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    proxy.WORK.mkdir(parents=True, exist_ok=True)  # where bench.proxy keeps nginx's files
    with (WORK / "bulk.bin").open("wb") as f:
        f.truncate(BULK)  # sparse: nginx sends 1 GiB of zeros without a disk write
    make_certs()
    up, ngx, port, ingress = free_port(), free_port(), free_port(), free_port()
    cases: list[Case] = []
    print(
        f"bench tunnel: wrk -t1 -c{args.connections} {args.duration:g}s x {args.repeat},"
        f" bulk {BULK >> 20} MiB x {args.bulk_repeat}",
        flush=True,
    )
    with nginx("upstream", UPSTREAM.format(port=up, work=WORK), [up]):
        with nginx("proxy", PROXY.format(port=ngx, upstream=up), [ngx]) as p:
            case = Case("nginx reverse proxy (limit)", f"http://127.0.0.1:{ngx}", None,
                        {"proxy": p.pid})  # fmt: skip
            measure(case, args)
            cases.append(case)
        control, tunnel_port = free_port(), free_port()
        (WORK / "server.toml").write_text(RATHOLE_SERVER.format(control=control, port=tunnel_port))
        (WORK / "client.toml").write_text(RATHOLE_CLIENT.format(control=control, upstream=up))
        with (
            running([rathole_bin, "--server", str(WORK / "server.toml")], [control],
                    WORK / "rathole-server.log") as server,
            running([rathole_bin, "--client", str(WORK / "client.toml")], [],
                    WORK / "rathole-client.log") as client,
        ):  # fmt: skip
            wait_port(tunnel_port)
            time.sleep(1)  # the client's control channel
            case = Case("rathole (plain TCP tunnel)", f"http://127.0.0.1:{tunnel_port}", None,
                        {"edge": server.pid, "agent": client.pid})  # fmt: skip
            measure(case, args)
            cases.append(case)
        with edge(port, ingress, up) as e:
            base = f"http://127.0.0.1:{port}"
            case = Case("edgeward serve, direct upstream", base, "direct.bench.test",
                        {"edge": e.pid})  # fmt: skip
            measure(case, args)
            cases.append(case)
            secret = token()
            env = {**os.environ, "EDGEWARD_AUTHTOKEN": secret}
            agent_cmd = edgeward(
                "agent", "http", str(up), "--url", f"http://{HOST}", "--server",
                f"localhost:{ingress}", "--ca", str(WORK / "ca.pem"), "--quiet",
            )  # fmt: skip
            with process(agent_cmd, WORK / "agent.log", "^Forwarding", env=env) as agent:
                case = Case("edgeward serve + edgeward agent", base, HOST,
                            {"edge": e.pid, "agent": agent.pid})  # fmt: skip
                measure(case, args)
                cases.append(case)
            if not args.no_sdk:
                options = {
                    "token": secret, "server": f"localhost:{ingress}", "ca": str(WORK / "ca.pem"),
                    "domain": "sdk.bench.test", "upstream": f"http://127.0.0.1:{up}",
                }  # fmt: skip
                sdk_cmd = [sys.executable, "-c", SDK_AGENT, json.dumps(options)]
                try:
                    with process(sdk_cmd, WORK / "sdk.log", "sdk.bench.test") as sdk:
                        case = Case("edgeward serve + ngrok SDK agent", base, "sdk.bench.test",
                                    {"edge": e.pid, "agent": sdk.pid})  # fmt: skip
                        measure(case, args)
                        cases.append(case)
                except (RuntimeError, TimeoutError) as exc:
                    print(f"  ngrok SDK agent: skipped ({exc})", flush=True)
    report(cases)


def report(cases: list[Case]) -> None:
    by_name = {c.name: c for c in cases}
    limit = by_name["nginx reverse proxy (limit)"]
    direct = by_name["edgeward serve, direct upstream"]
    anchor = by_name["rathole (plain TCP tunnel)"]
    table = Table(
        "small requests (wrk -c32, /small)",
        ["case", "req/s", "p99 ms", "CPU µs/req edge", "CPU µs/req agent",
         "x edge direct", "x rathole", "x nginx"],
    )  # fmt: skip
    for case in cases:
        run = case.small
        assert run is not None
        edge_cpu = run.cpu_us.get("edge", run.cpu_us.get("proxy", float("nan")))
        table.add(
            case.name, run.rps, run.p99_ms, edge_cpu, run.cpu_us.get("agent", float("nan")),
            run.rps / direct.small.rps,  # type: ignore[union-attr]
            run.rps / anchor.small.rps,  # type: ignore[union-attr]
            run.rps / limit.small.rps,  # type: ignore[union-attr]
        )  # fmt: skip
    table.print()
    if all(c.bulk_mbs for c in cases):
        table = Table(f"bulk ({BULK >> 20} MiB download)", ["case", "MB/s", "x rathole"])
        for case in cases:
            table.add(case.name, case.bulk_mbs, case.bulk_mbs / anchor.bulk_mbs)  # type: ignore[operator]
        table.print()
    ours = by_name.get("edgeward serve + edgeward agent")
    if ours is None or ours.small is None or direct.small is None or anchor.small is None:
        return
    summary = Table("targets", ["measure", "value", "target"])
    summary.add("tunnel / direct throughput (edge)", ours.small.rps / direct.small.rps, ">= 0.75")
    summary.add("tunnel / rathole, small requests", ours.small.rps / anchor.small.rps, ">= 0.30")
    if ours.bulk_mbs:
        summary.add("bulk through our tunnel, MB/s", ours.bulk_mbs, ">= 300")
    summary.print()
