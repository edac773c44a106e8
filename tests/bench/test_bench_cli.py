"""`edgeward bench` as a user runs it (a real process): `bench policy` on an
example policy and its cases, and on generated requests; `bench edge` on a
tiny edge config driven by the real wrk on loopback; a missing load
generator or matplotlib; and `python -m bench`, which shares the harness.
No timing is asserted: only that there are numbers, and their structure."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edgeward import native

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "examples" / "policies"
GATEWAY = POLICIES / "api-gateway.yml"
GATEWAY_CASES = POLICIES / "api-gateway.cases.yml"
# api-gateway.yml's rules and the actions of each, in the document's order.
GATEWAY_RULES = {
    "canonical host": ["redirect"],
    "retired v1 orders": ["custom-response"],
    "classify": ["set-vars"],
    "map v2 onto the upstream layout": ["url-rewrite", "add-headers"],
    "audit writes": ["log"],
}
FEW = ("--requests", "40", "--repeat", "1")


def edgeward(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "edgeward.cli", *map(str, args)]
    return subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=timeout, env=env, cwd=ROOT
    )


def check_backend(data: dict[str, Any], rules: dict[str, list[str]]) -> None:
    assert data["us_per_request"] > 0
    assert data["requests"] >= 40
    assert "on_http_request" in data["phases"]
    assert all(cost >= 0 for cost in data["phases"].values())
    rows = data["rules"]
    assert {row["rule"] for row in rows} == set(rules)
    costs = [row["us_per_request"] for row in rows]
    assert costs == sorted(costs, reverse=True), "costliest first"
    for row in rows:
        assert row["phase"] == "on_http_request"
        assert sorted(a["type"] for a in row["actions"]) == sorted(rules[row["rule"]])
        action_costs = [a["us_per_request"] for a in row["actions"]]
        assert action_costs == sorted(action_costs, reverse=True)
        parts = [a["us_per_request"] for a in row["actions"]]
        if row["expressions"] is not None:
            parts.append(row["expressions"]["us_per_request"])
            assert row["expressions"]["calls_per_request"] > 0
        assert row["us_per_request"] == pytest.approx(sum(parts))
    # "classify" has no expressions: it runs for every request
    classify = next(row for row in rows if row["rule"] == "classify")
    assert classify["expressions"] is None
    assert classify["actions"][0]["calls_per_request"] > 0
    shares = sum(row["share"] for row in rows) + data["engine"]["share"]
    assert shares == pytest.approx(100.0, abs=0.01)
    assert data["engine"]["us_per_request"] >= 0


def test_bench_policy_json_on_an_example_policy_and_its_cases() -> None:
    done = edgeward("bench", "policy", GATEWAY, GATEWAY_CASES, *FEW, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["policy"] == str(GATEWAY)
    assert result["cases"] == str(GATEWAY_CASES)
    assert result["generated"] is False
    backends = result["backends"]
    assert set(backends) | set(result["unavailable"]) == {"rust", "python"}
    assert "python" in backends
    for backend, data in backends.items():
        assert data["backend"] == backend
        assert data["cases"] == 4
        check_backend(data, GATEWAY_RULES)


def test_bench_policy_table_rows_in_order() -> None:
    done = edgeward("bench", "policy", GATEWAY, GATEWAY_CASES, *FEW, "--backend", "python")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"bench policy {GATEWAY} with {GATEWAY_CASES}: 4 requests")
    phases = lines.index("## µs per request, by phase")
    assert lines[phases + 1].split()[:3] == ["backend", "µs/request", "on_http_request"]
    assert lines[phases + 3].split()[0] == "python"
    start = next(i for i, line in enumerate(lines) if line.startswith("## rules and actions"))
    assert "python backend" in lines[start]
    rows = lines[start + 3 :]
    assert rows[-1].startswith("(engine: activations, rule loop, outcomes)")
    rules: list[tuple[str, float]] = []
    parts: dict[str, list[str]] = {}
    for row in rows[:-1]:
        if row.startswith("  "):  # a part of the rule above: expressions or an action
            name = row.split()[0]
            parts[rules[-1][0]].append(name)
        else:
            found = re.match(r"(.+?)\s+on_http_request\s+([\d.,]+)\s+([\d.]+)%$", row)
            assert found, row
            rules.append((found.group(1), float(found.group(2).replace(",", ""))))
            parts[found.group(1)] = []
    assert [name for name, _ in rules] == sorted(GATEWAY_RULES, key=lambda name: -dict(rules)[name])
    costs = [cost for _, cost in rules]
    assert costs == sorted(costs, reverse=True)
    for name, actions in GATEWAY_RULES.items():
        expected = [*actions] if name == "classify" else ["expressions", *actions]
        assert sorted(parts[name]) == sorted(expected)


@pytest.mark.parametrize(
    "name",
    ["jwt-orders-api", "pagerduty-webhook", "api-compression", "ip-allow-list"],
)
def test_bench_policy_on_policies_that_ask_for_io(name: str) -> None:
    """Actions that yield effects (a JWKS fetch, the request body) and body
    filters (compression) are timed through their generators."""
    from edgeward.document import load_document
    from edgeward.policy import compile_policy

    policy, cases = POLICIES / f"{name}.yml", POLICIES / f"{name}.cases.yml"
    compiled = compile_policy(load_document(policy))
    labels = {rule.label for rules in compiled.rules.values() for rule in rules}
    done = edgeward("bench", "policy", policy, cases, *FEW, "--backend", "python", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)["backends"]["python"]
    assert {row["rule"] for row in data["rules"]} == labels
    assert data["us_per_request"] > 0
    shares = sum(row["share"] for row in data["rules"]) + data["engine"]["share"]
    assert shares == pytest.approx(100.0, abs=0.01)
    assert sum(a["us_per_request"] for row in data["rules"] for a in row["actions"]) > 0


def test_bench_policy_without_cases_generates_requests(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(
        "on_http_request:\n"
        "  - name: no admin\n"
        "    expressions: [\"req.url.path.startsWith('/admin')\"]\n"
        "    actions: [{type: deny}]\n"
        "  - name: tag\n"
        "    actions: [{type: add-headers, config: {headers: {x-ip: '${conn.client_ip}'}}}]\n"
        "on_http_response:\n"
        "  - name: security headers\n"
        "    actions: [{type: add-headers, config: {headers: {x-frame-options: DENY}}}]\n"
    )
    done = edgeward("bench", "policy", policy, *FEW, "--backend", "python", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["generated"] is True and result["cases"] is None
    data = result["backends"]["python"]
    assert data["cases"] > 3
    assert set(data["phases"]) == {"on_http_request", "on_http_response"}
    rows = {row["rule"]: row for row in data["rules"]}
    assert set(rows) == {"no admin", "tag", "security headers"}
    assert rows["security headers"]["phase"] == "on_http_response"
    # the generated probe of /admin is denied: "tag" runs for fewer requests
    deny = rows["no admin"]["actions"][0]
    assert 0 < deny["calls_per_request"] < 1
    assert rows["tag"]["actions"][0]["calls_per_request"] == pytest.approx(
        1 - deny["calls_per_request"]
    )


# One cheap rule, one whose regex scans a 100 kB query (hundreds of times
# costlier), one whose rate-limit the native runner leaves to the engine (its
# key is not a string), a deny that ends every request, and a rule after it.
RANKED_POLICY = """
on_http_request:
  - name: cheap
    expressions: ["req.method == 'GET'"]
    actions: [{type: add-headers, config: {headers: {x-cheap: "1"}}}]
  - name: costly
    expressions: ["req.url.query.matches('^(ab|ba)*$')"]
    actions: [{type: add-headers, config: {headers: {x-costly: "1"}}}]
  - name: left to the engine
    expressions: ["req.url.path == '/engine'"]
    actions:
      - type: rate-limit
        config: {name: r, algorithm: sliding_window, capacity: 1000000, rate: 60s,
                 bucket_key: ["conn.client_port"]}
  - name: block
    actions: [{type: deny}]
  - name: never
    expressions: ["req.method == 'GET'"]
    actions: [{type: add-headers, config: {headers: {x-never: "1"}}}]
"""
RANKED_CASES = """
cases:
  - request: {{url: "https://app.example.com/native?{query}"}}
  - request: {{url: "https://app.example.com/engine?{query}"}}
"""


@pytest.mark.skipif(native.PhaseRunner is None, reason="needs the native module")
def test_bench_policy_times_the_rules_where_the_edge_runs_them(tmp_path: Path) -> None:
    """On the rust backend the per-rule table times the native phase
    runner (steps it leaves to the engine: the engine's timers); on both,
    the costly rule comes first and the calls per request are exact."""
    policy, cases = tmp_path / "policy.yml", tmp_path / "policy.cases.yml"
    policy.write_text(RANKED_POLICY)
    cases.write_text(RANKED_CASES.format(query="ab" * 50_000))
    done = edgeward("bench", "policy", policy, cases, *FEW, "--json")
    assert done.returncode == 0, done.stderr
    backends = json.loads(done.stdout)["backends"]
    assert backends["rust"]["native_runner"] is True
    assert backends["python"]["native_runner"] is False
    for data in backends.values():
        check_backend_shape(data)
        assert data["rules"][0]["rule"] == "costly"
        calls = {
            row["rule"]: (
                row["expressions"] and row["expressions"]["calls_per_request"],
                [a["calls_per_request"] for a in row["actions"]],
            )
            for row in data["rules"]
        }
        assert calls == {
            "cheap": (1, [1]),
            "costly": (1, [1]),
            "left to the engine": (1, [0.5]),  # the engine ran it, for /engine
            "block": (None, [1]),  # the runner's deny for /native, the engine's for /engine
            "never": (0, [0]),
        }
    done = edgeward("bench", "policy", policy, cases, *FEW, "--backend", "rust")
    assert done.returncode == 0, done.stderr
    assert "(rust backend, in the native phase runner; shares of" in done.stdout


def check_backend_shape(data: dict[str, Any]) -> None:
    """What every backend's result holds (the `--json` schema)."""
    assert data["us_per_request"] > 0
    assert data["instrumented_us_per_request"] > 0
    costs = [row["us_per_request"] for row in data["rules"]]
    assert costs == sorted(costs, reverse=True), "costliest first"
    for row in data["rules"]:
        assert set(row) == {
            "rule",
            "phase",
            "index",
            "us_per_request",
            "share",
            "expressions",
            "actions",
        }
        for action in row["actions"]:
            assert set(action) == {"type", "index", "us_per_request", "calls_per_request", "share"}
    shares = sum(row["share"] for row in data["rules"]) + data["engine"]["share"]
    assert shares == pytest.approx(100.0, abs=0.01)


def shadowed(tmp_path: Path, module: str) -> dict[str, str]:
    """An environment where `import MODULE` fails, as where it is not
    installed (a package of that name that raises ImportError comes first)."""
    shadow = tmp_path / "shadow" / module
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        f'raise ImportError("No module named {module!r} (shadowed)", name={module!r})\n'
    )
    path = os.pathsep.join([str(shadow.parent), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def test_bench_policy_without_the_native_module_measures_python(tmp_path: Path) -> None:
    env = shadowed(tmp_path, "edgeward_native")
    env.pop("EDGEWARD_BACKEND", None)  # the parent falls back to the reference
    done = edgeward("bench", "policy", GATEWAY, GATEWAY_CASES, *FEW, env=env)
    assert done.returncode == 0, done.stderr
    assert "rust backend not measured: the compiled module (edgeward_native) is not installed" in (
        done.stdout
    )
    assert "(python backend;" in done.stdout and "(rust backend;" not in done.stdout


def test_bench_policy_errors_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on_http_request:\n  - actions: [{type: dney}]\n")
    done = edgeward("bench", "policy", bad, *FEW)
    assert done.returncode == 1
    assert f"{bad}:2" in done.stderr
    assert "Traceback" not in done.stderr
    done = edgeward("bench", "policy", GATEWAY, tmp_path / "missing.cases.yml", *FEW)
    assert done.returncode == 1
    assert "missing.cases.yml" in done.stderr


def test_bench_policy_plot_writes_a_chart(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    chart = tmp_path / "policy.png"
    done = edgeward("bench", "policy", GATEWAY, GATEWAY_CASES, *FEW, "--plot", chart)
    assert done.returncode == 0, done.stderr
    assert f"chart: {chart}" in done.stdout
    assert chart.read_bytes().startswith(b"\x89PNG")


def test_plot_without_matplotlib_says_how_to_get_it(tmp_path: Path) -> None:
    env = shadowed(tmp_path, "matplotlib")
    chart = tmp_path / "policy.png"
    done = edgeward("bench", "policy", GATEWAY, GATEWAY_CASES, *FEW, "--plot", chart, env=env)
    assert done.returncode == 1
    assert "pip install 'edgeward[plot]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not chart.exists()


# --- bench edge ----------------------------------------------------------------------

TINY_EDGE = """
listeners:
  - name: web
    address: 127.0.0.1:1
endpoints:
  - name: plain
    hostname: plain.test
    upstream: http://127.0.0.1:9
  - name: app
    hostname: app.test
    upstream: http://127.0.0.1:9
    traffic_policy_file: policy.yml
events: off
"""
TINY_POLICY = """
on_http_request:
  - name: no admin
    expressions: ["req.url.path.startsWith('/admin')"]
    actions: [{type: deny}]
on_http_response:
  - actions: [{type: add-headers, config: {headers: {x-frame-options: DENY}}}]
"""
EDGE_RUN = ("--duration", "1", "--repeat", "1", "--warmup", "0", "--connections", "4")


@pytest.fixture
def tiny_edge(tmp_path: Path) -> Path:
    (tmp_path / "policy.yml").write_text(TINY_POLICY)  # relative to the config
    config = tmp_path / "edge.yml"
    config.write_text(TINY_EDGE)
    return config


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (make system-deps)")
def test_bench_edge_with_wrk_reports_rates_and_a_ratio(tiny_edge: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    chart = tmp_path / "charts" / "edge.svg"
    chart.parent.mkdir()
    done = edgeward("bench", "edge", "--config", tiny_edge, *EDGE_RUN, "--json", "--plot", chart)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["endpoint"] == "app"  # the first endpoint with a policy
    assert result["host"] == "app.test"
    assert result["tool"] == "wrk"
    # the edges ran on this interpreter, named by the file a venv links to
    assert os.path.realpath(sys.executable) in result["python"]
    for key in ("with_policy", "without_policy"):
        edge = result["edges"][key]
        assert edge["rps"] > 0
        assert edge["requests"] > 0
        assert edge["non_2xx"] == 0 and edge["errors"] == 0
        assert edge["cpu_us_per_request"] > 0
        assert edge["p50_ms"] > 0 and edge["p99_ms"] >= edge["p50_ms"]
    assert result["ratio"] > 0
    assert result["cpu_ratio"] > 0
    assert result["warnings"] == []
    # the progress display (stderr is no terminal here: a line per run)
    assert "[1/2] with policy: 1 s" in done.stderr
    assert "[2/2] without policy: 1 s" in done.stderr
    # the derived configs beside the original are gone
    names = sorted(p.name for p in tiny_edge.parent.iterdir())
    assert names == ["charts", "edge.yml", "policy.yml"]
    assert b"<svg" in chart.read_bytes()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (make system-deps)")
def test_bench_edge_table_and_a_denied_path(tiny_edge: Path) -> None:
    done = edgeward("bench", "edge", "-c", tiny_edge, *EDGE_RUN, "--path", "/admin/x")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"bench edge {tiny_edge}: endpoint app (Host app.test, http,")
    table = lines.index("## http/1.1, endpoint app, /admin/x")
    with_policy = lines[table + 3].split()
    without = lines[table + 4].split()
    assert with_policy[:2] == ["with", "policy"] and without[:2] == ["without", "policy"]
    assert int(with_policy[-2].replace(",", "")) > 0  # the policy denies: non-2xx
    assert int(without[-2].replace(",", "")) == 0
    assert any(line.startswith("throughput (req/s)") for line in lines)
    assert any(line.startswith("warning: with policy:") and "not 2xx/3xx" in line for line in lines)


def test_bench_edge_without_wrk_names_the_package(tiny_edge: Path, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    done = edgeward("bench", "edge", "--config", tiny_edge, *EDGE_RUN, env=env)
    assert done.returncode == 1
    assert "needs wrk, which is not installed" in done.stderr
    assert "apt-get install wrk" in done.stderr
    assert "Traceback" not in done.stderr
    done = edgeward("bench", "edge", "--config", tiny_edge, "--http2", *EDGE_RUN, env=env)
    assert done.returncode == 1
    assert "needs h2load" in done.stderr and "apt-get install nghttp2-client" in done.stderr


def test_bench_edge_config_errors_exit_1(tiny_edge: Path) -> None:
    done = edgeward("bench", "edge", "--config", tiny_edge, "--endpoint", "nope", *EDGE_RUN)
    assert done.returncode == 1
    assert "no endpoint named 'nope' (endpoints: plain, app)" in done.stderr
    done = edgeward("bench", "edge", "--config", tiny_edge, "--endpoint", "plain", *EDGE_RUN)
    assert done.returncode == 1
    assert "endpoint 'plain' has no traffic policy" in done.stderr


# --- python -m bench shares the harness ----------------------------------------------------


def test_python_m_bench_lists_its_cases_and_each_imports() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench"], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    cases = done.stdout.removeprefix("bench cases:").strip().split(", ")
    assert {"policy", "proxy", "action_costs", "tunnel"} <= set(cases)
    imports = "; ".join(f"import bench.{case}" for case in cases)
    done = subprocess.run(
        [sys.executable, "-c", imports], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
