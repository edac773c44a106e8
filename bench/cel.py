"""CEL: evaluation and compile time of ten realistic Traffic Policy rules.

`python -m bench cel [--quick]` measures, on one realistic request context
(a plain nested dict, as the proxy hands it over), the median time of one
evaluation *including the reading of the context from Python*, for:

- edgeward native (Rust, `edgeward_native`), compiled against the policy env;
- the edgeward reference (`edgeward.expr`, pure Python), same programs;
- `common-expression-language` (PyPI, Rust-backed), given the context and
  the gateway function as a `cel.Context` per request;
- `cel-python` (PyPI `celpy`, pure Python), given the context converted
  with `celpy.json_to_cel` per request (what its API needs).

Then the compile time of each rule (native and reference). Targets (not
asserted): native <= 1.5 us median per evaluation, >= 10x faster than
common-expression-language, >= 500x faster than cel-python, compile <= 50 us.
The optional competitors come from the `bench` extra (`pip install -e
'.[bench]'`); a missing one is reported and left out.
"""

from __future__ import annotations

import ipaddress
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from edgeward.bench.table import Table
from edgeward.bench.timing import median_ns_per_call

RULES: list[tuple[str, str]] = [
    ("path prefix", "req.url.path.startsWith('/api/') && req.method == 'POST'"),
    (
        "bearer header",
        "'authorization' in req.headers && req.headers['authorization'][0].startsWith('Bearer ')",
    ),
    ("method set", "req.method in ['GET', 'HEAD', 'OPTIONS']"),
    (
        "private CIDRs",
        "inCidrRanges(conn.client_ip, ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'])",
    ),
    ("bot user agent", "req.headers['user-agent'][0].matches('(?i)(bot|crawler|spider)')"),
    ("email domain", "actions.ngrok.oauth.identity.email.endsWith('@example.com')"),
    ("debug headers", "req.headers.exists(k, k.startsWith('x-debug'))"),
    (
        "office hours",
        "timestamp(time.now).getHours('America/New_York') >= 9 && "
        "timestamp(time.now).getHours('America/New_York') < 17",
    ),
    ("query param", "size(req.url.query_params) > 0 && 'debug' in req.url.query_params"),
    ("block probes", "req.url.path.endsWith('.php') || req.url.path.contains('/wp-admin')"),
]

CONTEXT: dict[str, Any] = {
    "req": {
        "method": "GET",
        "url": {
            "path": "/api/v1/orders/8812",
            "query": "page=2&sort=desc",
            "query_params": {"page": ["2"], "sort": ["desc"]},
            "host": "shop.example.com",
            "scheme": "https",
        },
        "headers": {
            "host": ["shop.example.com"],
            "user-agent": ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0"],
            "accept": ["application/json"],
            "accept-encoding": ["gzip, deflate, br"],
            "accept-language": ["en-US,en;q=0.9"],
            "authorization": ["Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN"],
            "cookie": ["session=9f8e7d6c; theme=dark"],
            "x-request-id": ["f3c2a1b0-7d6e-4f5a-9b8c-1d2e3f4a5b6c"],
            "x-forwarded-for": ["198.51.100.23"],
            "x-forwarded-proto": ["https"],
            "content-type": ["application/json"],
            "sec-fetch-mode": ["cors"],
            "referer": ["https://shop.example.com/cart"],
        },
    },
    "conn": {"client_ip": "203.0.113.77", "client_port": 51234},
    "time": {"now": "2024-06-12T18:30:00Z"},
    "actions": {"ngrok": {"oauth": {"identity": {"email": "ada@example.com", "name": "Ada"}}}},
}


def _in_cidr_ranges(ip: str, cidrs: list[str]) -> bool:
    address = ipaddress.ip_address(ip)
    return any(address in ipaddress.ip_network(c, strict=False) for c in cidrs)


Evaluate = Callable[[], object]


def _edgeward(module: Any, env: Any) -> Callable[[str], Evaluate]:
    def prepare(source: str) -> Evaluate:
        program = module.compile(source, env=env)
        return lambda: program.evaluate(CONTEXT)

    return prepare


def _common_expression_language() -> Callable[[str], Evaluate] | None:
    try:
        import cel
    except ImportError:
        return None
    functions = {"inCidrRanges": _in_cidr_ranges}

    def prepare(source: str) -> Evaluate:
        program = cel.compile(source)
        return lambda: program.execute(cel.Context(variables=CONTEXT, functions=functions))

    return prepare


def _cel_python() -> Callable[[str], Evaluate] | None:
    try:
        import celpy
    except ImportError:
        return None
    env = celpy.Environment()

    def in_cidr_ranges(ip: Any, cidrs: Any) -> Any:
        return celpy.celtypes.BoolType(_in_cidr_ranges(str(ip), [str(c) for c in cidrs]))

    def prepare(source: str) -> Evaluate:
        program = env.program(env.compile(source), functions={"inCidrRanges": in_cidr_ranges})
        return lambda: program.evaluate(celpy.json_to_cel(CONTEXT))

    return prepare


def _calibrated(fn: Evaluate, budget_s: float) -> float:
    """Median ns per call, with the call count sized to the time budget."""
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    number = max(1, min(20_000, int(budget_s / 7 / once)))
    return median_ns_per_call(fn, number=number)


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    budget = 0.05 if quick else 0.3

    import edgeward_native as native

    import edgeward.expr as reference
    from edgeward.expr.policy_env import VARIABLES

    engines: dict[str, Callable[[str], Evaluate] | None] = {
        "native": _edgeward(native, native.Env(VARIABLES)),
        "reference": _edgeward(reference, reference.Env(VARIABLES)),
        "cel (Rust)": _common_expression_language(),
        "cel-python": _cel_python(),
    }
    for name, engine in engines.items():
        if engine is None:
            print(f"({name} is not installed: pip install -e '.[bench]')", file=sys.stderr)
    present = {name: e for name, e in engines.items() if e is not None}

    # Engines must agree on a rule before it is timed; one that cannot run a
    # rule (a function it lacks) is "n/a" there.
    results: dict[str, dict[str, float]] = {name: {} for name in present}
    for label, source in RULES:
        values: dict[str, object] = {}
        for name, engine in present.items():
            try:
                call = engine(source)
                values[name] = call()
            except Exception as exc:  # a competitor's missing feature
                print(f"{name} cannot run {label!r}: {exc}", file=sys.stderr)
                continue
            results[name][label] = _calibrated(call, budget)
        if len({bool(v) for v in values.values()}) != 1:
            raise SystemExit(f"engines disagree on {label!r}: {values}")

    others = [n for n in present if n != "native"]
    table = Table(
        "CEL evaluation, ns per call (median), incl. reading the context",
        ["rule", *present, *(f"{n} / native" for n in others)],
    )

    def cell(name: str, label: str) -> object:
        return results[name].get(label, "n/a")

    def ratio(name: str, label: str) -> str:
        if label not in results[name]:
            return "n/a"
        return f"{results[name][label] / results['native'][label]:,.0f}x"

    for label, _ in RULES:
        table.add(label, *(cell(n, label) for n in present), *(ratio(n, label) for n in others))
    # Medians over the rules every engine ran, so that ratios compare alike.
    common = [label for label, _ in RULES if all(label in results[n] for n in present)]
    medians = {n: statistics.median(results[n][label] for label in common) for n in present}
    table.add(
        f"median ({len(common)} rules)",
        *medians.values(),
        *(f"{medians[n] / medians['native']:,.0f}x" for n in others),
    )
    table.add(
        "native median (all rules)",
        statistics.median(results["native"].values()),
        *[""] * (len(present) - 1 + len(others)),
    )
    table.print()

    compile_table = Table("CEL compile, us per rule (median)", ["rule", "native", "reference"])
    native_env, reference_env = native.Env(VARIABLES), reference.Env(VARIABLES)
    for label, source in RULES:
        n = median_ns_per_call(lambda s=source: native.compile(s, env=native_env), number=200)
        r = median_ns_per_call(lambda s=source: reference.compile(s, env=reference_env), number=20)
        compile_table.add(label, n / 1000, r / 1000)
    compile_table.print()


if __name__ == "__main__":
    main(sys.argv[1:])
