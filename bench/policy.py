"""`python -m bench policy`: what a 20-rule Traffic Policy costs the edge,
and what checking a login session (`openid-connect`) costs.

The proxy bench's set-up (`bench.proxy`: an nginx upstream, wrk driving
HTTP/1.1 keep-alive) runs the same edge twice in one run: without a policy,
then with a realistic 20-rule policy on the endpoint:

- `restrict-ips` with an allow list of 1,000 CIDRs (the client is in it),
- 16 rules with CEL conditions on path, method, headers, cookies, query,
  user agent and client IP (none matches the bench's request, so every one
  is evaluated for every request),
- `add-headers` on the request (one value interpolated),
- `rate-limit` with a capacity no bench reaches (when the action exists),
- `add-headers` on the response (security headers).

A third edge with a one-action policy shows what the proxy's hook path
costs by itself. Besides req/s, the table gives each edge's CPU time per
request (from /proc), which a busy machine disturbs less; and the sans-IO
engine alone is timed on the same policy (no sockets). Target (a benchmark,
not a test): the policy costs at most 10% of the edge's throughput.

The authenticated case runs three HTTPS edges: an endpoint behind
`openid-connect` sent a valid session cookie (sessions in SQLite, written
by the bench as a login would), the same endpoint without a policy, and
with the one-action policy (the hook path by itself); and times the
sans-IO engine alone on that request, with and without the read cache.
Target: a session check costs at most 10% of throughput.

    python -m bench policy [--duration 5] [--repeat 3] [--connections 32]
                           [--only {rules,session}]
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import shutil
import sys
from collections.abc import Generator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from subprocess import Popen
from typing import Any

from bench.proxy import EDGE, UPSTREAM, WORK, nginx
from edgeward.bench.load import Result, median, wrk
from edgeward.bench.processes import cpu_seconds, free_port, running
from edgeward.bench.table import Table
from edgeward.bench.timing import median_ns_per_call

HERE = WORK.parent / "policy"

CONDITIONS = (
    ("block admin", "req.url.path.startsWith('/admin')"),
    ("no deletes on the api", "req.method == 'DELETE' && req.url.path.startsWith('/api')"),
    ("debug header", "'x-debug' in req.headers"),
    ("internal only", "inCidrRange(conn.client_ip, '10.0.0.0/8') && req.url.path == '/internal'"),
    ("scanner", "'user-agent' in req.headers && req.headers['user-agent'][0].contains('sqlmap')"),
    ("xss probe", "req.url.query.contains('<script')"),
    ("wordpress probe", "req.url.path.matches('^/wp-(admin|login)')"),
    ("dotfiles", "req.url.path.contains('/.')"),
    ("huge body", "has(req.content_length) && req.content_length > 10000000"),
    ("trace and connect", "req.method in ['TRACE', 'CONNECT']"),
    ("wrong host", "req.host == 'evil.example'"),
    ("retired v0", "req.url.path.startsWith('/v0/')"),
    ("stolen session", "'session' in req.cookies && req.cookies['session'][0].value == 'x'"),
    ("debug query", "'debug' in req.url.query_params"),
    ("bots at checkout", "req.user_agent.is_bot && req.url.path.startsWith('/checkout')"),
    ("blocked clients", "conn.client_ip in ['192.0.2.1', '192.0.2.2']"),
)


# The cheapest policy there is: what the proxy's hook path costs by itself.
ONE_ACTION = "on_http_response: [{actions: [{type: add-headers, config: {headers: {x-a: b}}}]}]\n"


def rate_limit_available() -> bool:
    from edgeward.policy.actions import ACTIONS

    return "rate-limit" in ACTIONS


def policy_text(cidrs: int = 1000) -> str:
    """The 20-rule policy (19 while `rate-limit` is not implemented)."""
    rnd = random.Random(20)
    allow = ["127.0.0.0/8"]
    while len(allow) < cidrs:
        allow.append(str(ipaddress.ip_network((rnd.getrandbits(32) & 0xFFFFFF00, 24))))
    lines = ["on_http_request:", "  - name: allow list", "    actions:"]
    lines += ["      - type: restrict-ips", "        config:", "          allow:"]
    lines += [f"            - {cidr}" for cidr in allow]
    for name, expression in CONDITIONS:
        lines += [f"  - name: {name}", "    expressions:", f'      - "{expression}"']
        lines += ["    actions: [{type: deny}]"]
    lines += ["  - name: tag", "    actions:", "      - type: add-headers", "        config:"]
    lines += ["          headers: {x-client-ip: '${conn.client_ip}', x-edge: edgeward}"]
    if rate_limit_available():
        lines += ["  - name: rate limit", "    actions:", "      - type: rate-limit"]
        lines += ["        config: {name: bench, algorithm: sliding_window, capacity: 2000000000,"]
        lines += ["                 rate: 60s, bucket_key: [conn.client_ip]}"]
    lines += ["on_http_response:", "  - name: security headers", "    actions:"]
    lines += ["      - type: add-headers", "        config:", "          headers:"]
    lines += ["            x-frame-options: DENY", "            x-content-type-options: nosniff"]
    return "\n".join(lines) + "\n"


def edgeward_with(
    port: int, upstream: int, policy: Path | None
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
    return running([*cmd, "--log-level", "warning"], [port], HERE / f"edge-{port}.log")


# The request of the sans-IO table: what wrk sends the edges below.
EXCHANGE_CASE = """
cases:
  - request:
      url: http://127.0.0.1:8080/small
      client_ip: 127.0.0.1
      headers: {user-agent: wrk, accept: "*/*"}
    response: {headers: {content-type: text/plain}}
"""


def engine_ns_per_exchange(text: str) -> float:
    """One request and its response through the compiled policy, no I/O:
    the harness of `edgeward bench policy` (its phase hooks, timed)."""
    from edgeward.bench.policy import load, phase_costs

    HERE.mkdir(parents=True, exist_ok=True)
    policy, cases = HERE / "engine-policy.yml", HERE / "engine.cases.yml"
    policy.write_text(text)
    cases.write_text(EXCHANGE_CASE)
    return float(phase_costs(load(policy, cases), requests=5000, repeat=7)["us_per_request"]) * 1000


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench policy", description=__doc__)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--only", choices=("rules", "session"), help="run only the rules or the session tables"
    )
    args = parser.parse_args(argv)
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"bench policy needs {tool} (make system-deps)")
    HERE.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    if args.only != "session":
        rules_tables(args)
    if args.only != "rules":
        up = free_port()
        with nginx("upstream-identity", UPSTREAM.format(port=up, work=WORK), [up]):
            authenticated(args, up)


def rules_tables(args: argparse.Namespace) -> None:
    """The engine table, then no policy vs one action vs the 20 rules."""
    text = policy_text()
    policy = HERE / "policy.yml"
    policy.write_text(text)
    rules = text.count("  - name: ")
    slot = "" if rate_limit_available() else " (rate-limit slot empty: action not available yet)"
    d, n, c = args.duration, args.repeat, args.connections
    print(
        f"bench policy: {rules} rules{slot}; wrk -t1 -c{c}, {d:g}s x {n} runs per edge, "
        "alternating; median run shown",
        flush=True,
    )

    engine = Table("sans-IO engine, one exchange (no sockets)", ["policy", "us/exchange"])
    engine.add(f"{rules} rules", engine_ns_per_exchange(text) / 1000)
    engine.add("empty", engine_ns_per_exchange("{}\n") / 1000)
    engine.print()

    one_action = HERE / "one-action.yml"
    one_action.write_text(ONE_ACTION)
    full = f"{rules}-rule policy"
    edges = {"no policy": None, "1-action policy": one_action, full: policy}
    up = free_port()
    ports = {who: free_port() for who in edges}
    runs: dict[str, list[Result]] = {who: [] for who in edges}
    cpu: dict[str, float] = dict.fromkeys(edges, 0.0)
    served: dict[str, float] = dict.fromkeys(edges, 0.0)
    with ExitStack() as stack:
        stack.enter_context(nginx("upstream", UPSTREAM.format(port=up, work=WORK), [up]))
        procs = {
            who: stack.enter_context(edgeward_with(ports[who], up, path))
            for who, path in edges.items()
        }
        # Alternate the edges so that a change in the machine's load (other
        # processes) weighs on all alike; also count each edge's CPU time.
        for _ in range(n):
            for who in edges:
                before = cpu_seconds(procs[who].pid)
                result = wrk(f"http://127.0.0.1:{ports[who]}/small", d, c)
                cpu[who] += cpu_seconds(procs[who].pid) - before
                served[who] += result.rps * max(1, round(d))
                runs[who].append(result)
    results = {who: median(out) for who, out in runs.items()}
    base = results["no policy"].rps
    base_cpu = cpu["no policy"] / served["no policy"]
    table = Table(
        "HTTP/1.1 keep-alive, /small",
        ["edge", "req/s", "p50 ms", "p99 ms", "x none", "edge CPU us/req", "CPU x none"],
    )
    for who, r in results.items():
        per_request = cpu[who] / served[who]
        table.add(
            who, r.rps, r.p50_ms, r.p99_ms, r.rps / base, per_request * 1e6, per_request / base_cpu
        )
    table.print()
    summary = Table("target", ["measure", "value", "target"])
    summary.add("throughput with policy / without", results[full].rps / base, ">= 0.90")
    summary.add(
        "edge CPU per request, without / with", base_cpu * served[full] / cpu[full], ">= 0.90"
    )
    summary.print()


# --- the authenticated case ------------------------------------------------------

OIDC_POLICY = """
on_http_request:
  - actions:
      - type: openid-connect
        config:
          issuer_url: http://127.0.0.1:9
          client_id: bench
          client_secret: bench-secret
"""
TLS_EDGE = """
listeners:
  - name: bench
    address: 127.0.0.1:{port}
    tls:
      certificates: [{{cert: {cert}, key: {key}}}]
identity:
  auth_host: auth.bench.test
  keys_file: {keys}
  session_store: sqlite:{store}
  allow_insecure_loopback_issuer: true
endpoints:
  - name: bench
    hostname: 127.0.0.1
    upstream: http://127.0.0.1:{upstream}
{policy}limits:
  max_connections: 100000
"""


def session_cookie(directory: Path, port: int) -> tuple[Path, Path, str]:
    """A keys file, a SQLite session store holding one session, and the
    sealed cookie that names it, as a login would have left them."""
    import json
    import time

    from edgeward.document import parse_document
    from edgeward.identity import Runtime, SessionOptions
    from edgeward.identity.flow import cookie_names
    from edgeward.identity.seal import load_keys, new_key_set
    from edgeward.identity.store import SqliteStore, run_now
    from edgeward.policy import compile_policy

    keys = directory / "keys.json"
    keys.write_text(json.dumps(new_key_set("bench")))
    store_file = directory / "sessions.db"
    store_file.unlink(missing_ok=True)
    store = SqliteStore(store_file)
    runtime = Runtime(auth_host="auth.bench.test", keyring=load_keys(keys), store=store)
    runtime.allow_insecure_loopback = True
    compile_policy(parse_document(OIDC_POLICY, "bench.yml"), identity=runtime, edge=True)
    (client,) = runtime.clients.values()
    now = time.time()
    identity = {"sub": "u1", "email": "dev@example.com", "name": "Dev", "sid": "", "claims": {}}
    record = {"k": client.key, "created": now, "seen": now, "ui": now, "ident": identity}
    record.update({"at": "access", "rt": "", "it": "", "exp": None})
    run_now(store.put("session:bench-session", record, 86_400, now))
    store.close()
    sealed = runtime.keyring.seal(
        "session",
        {
            "s": "bench-session",
            "k": client.key,
            "a": "",
            "h": f"127.0.0.1:{port}",
            "exp": now + 86_400,
        },
    )
    name, _ = cookie_names(SessionOptions())
    return keys, store_file, f"{name}={sealed}"


def session_engine_us(directory: Path, *, cached: bool) -> tuple[float, float]:
    """The sans-IO engine alone, one exchange with a valid session cookie
    through `openid-connect` (sessions in SQLite, as the edge opens them:
    behind the read cache, or without it), and the same with an empty
    policy: (µs with the session check, µs with the empty policy)."""
    from edgeward.document import parse_document
    from edgeward.hooks import (
        ConnectionInfo,
        EndpointInfo,
        Forward,
        RequestHead,
        ResponseHead,
    )
    from edgeward.identity import Runtime
    from edgeward.identity.seal import load_keys
    from edgeward.identity.store import CachedStore, SessionStore, SqliteStore
    from edgeward.policy import compile_policy

    port = 8443
    keys, store_file, cookie = session_cookie(directory, port)
    sqlite = SqliteStore(store_file)
    store: SessionStore = CachedStore(sqlite) if cached else sqlite
    runtime = Runtime(auth_host="auth.bench.test", keyring=load_keys(keys), store=store)
    runtime.allow_insecure_loopback = True
    conn = ConnectionInfo("c", "bench", "127.0.0.1", 50000, "127.0.0.1", port, 0.0)
    endpoint = EndpointInfo("bench", "https://127.0.0.1", "127.0.0.1", port, "https", "ep", "up")
    headers = [(b"user-agent", b"wrk"), (b"cookie", cookie.encode())]
    out = []
    for text in (OIDC_POLICY, "{}\n"):
        policy = compile_policy(parse_document(text, "b.yml"), identity=runtime, edge=True)

        def exchange(policy: Any = policy) -> None:
            head = RequestHead(
                b"GET", b"/small", f"127.0.0.1:{port}".encode(), b"https", list(headers), b"1.1"
            )
            hooks = policy.begin(conn, endpoint, head, "r")
            outcome = hooks.on_http_request(head)
            if isinstance(outcome, Generator):
                try:
                    outcome.send(None)
                except StopIteration as stop:
                    outcome = stop.value
                else:
                    raise RuntimeError("the session check asked for I/O")
            if not isinstance(outcome, Forward):
                raise RuntimeError(f"the session was refused: {outcome!r}")
            hooks.on_http_response(ResponseHead(200, [(b"content-type", b"text/plain")]))

        out.append(median_ns_per_call(exchange, number=2000) / 1000)
    sqlite.close()
    return out[0], out[1]


def authenticated(args: argparse.Namespace, up: int) -> None:
    """openid-connect with a valid session cookie vs the same TLS endpoint
    without a policy (sessions in SQLite: the bench writes the session)."""
    import trustme

    directory = HERE / "identity"
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    (directory / "oidc.yml").write_text(OIDC_POLICY)
    (directory / "one-action.yml").write_text(ONE_ACTION)
    engine = Table(
        "sans-IO engine, one exchange with a session cookie (no sockets)",
        ["policy", "us/exchange"],
    )
    cached, empty = session_engine_us(directory, cached=True)
    uncached, _ = session_engine_us(directory, cached=False)
    engine.add("openid-connect + session (edge: read cache)", cached)
    engine.add("openid-connect + session, no read cache", uncached)
    engine.add("empty", empty)
    engine.print()
    edges = {
        "TLS, no policy": "",
        "TLS, 1-action policy": "one-action.yml",
        "TLS, openid-connect + session": "oidc.yml",
    }
    ports = {who: free_port() for who in edges}
    auth_port = ports["TLS, openid-connect + session"]
    keys, store, cookie = session_cookie(directory, auth_port)
    runs: dict[str, list[Result]] = {who: [] for who in edges}
    cpu: dict[str, float] = dict.fromkeys(edges, 0.0)
    served: dict[str, float] = dict.fromkeys(edges, 0.0)
    with ExitStack() as stack:
        procs = {}
        for who, kind in edges.items():
            policy = f"    traffic_policy_file: {directory / kind}\n" if kind else ""
            conf = directory / f"edge-{ports[who]}.yml"
            conf.write_text(
                TLS_EDGE.format(
                    port=ports[who], cert=cert, key=key, keys=keys, store=store,
                    upstream=up, policy=policy,
                )
            )  # fmt: skip
            cmd = [sys.executable, "-m", "edgeward.cli", "serve", "--config", str(conf)]
            procs[who] = stack.enter_context(
                running([*cmd, "--log-level", "error"], [ports[who]], directory / f"{who[:3]}.log")
            )
        for _ in range(args.repeat):
            for who in edges:
                before = cpu_seconds(procs[who].pid)
                result = wrk(
                    f"https://127.0.0.1:{ports[who]}/small",
                    args.duration,
                    args.connections,
                    headers=(f"cookie: {cookie}",),
                )
                cpu[who] += cpu_seconds(procs[who].pid) - before
                served[who] += result.rps * max(1, round(args.duration))
                runs[who].append(result)
    results = {who: median(out) for who, out in runs.items()}
    base_name = "TLS, no policy"
    base = results[base_name].rps
    base_cpu = cpu[base_name] / served[base_name]
    table = Table(
        "HTTPS keep-alive, /small, with a session cookie",
        ["edge", "req/s", "p50 ms", "p99 ms", "x none", "edge CPU us/req", "CPU x none"],
    )
    for who, r in results.items():
        per_request = cpu[who] / served[who]
        table.add(
            who, r.rps, r.p50_ms, r.p99_ms, r.rps / base, per_request * 1e6, per_request / base_cpu
        )
    table.print()
    oidc, one = "TLS, openid-connect + session", "TLS, 1-action policy"
    summary = Table("target", ["measure", "value", "target"])
    summary.add("throughput with a session check / without", results[oidc].rps / base, ">= 0.90")
    summary.add(
        "edge CPU per request, without / with", base_cpu * served[oidc] / cpu[oidc], ">= 0.90"
    )
    summary.add(
        "edge CPU per request, 1-action policy / session check",
        (cpu[one] / served[one]) / (cpu[oidc] / served[oidc]),
        "(the check beyond the hook path)",
    )
    summary.print()
