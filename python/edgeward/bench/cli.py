"""`edgeward bench policy FILE [CASES]` and `edgeward bench edge --config FILE`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from edgeward.bench.load import MissingTool, Progress
from edgeward.bench.processes import interpreter
from edgeward.bench.table import Table
from edgeward.errors import ConfigError, EdgewardError

_PLOT_HELP = (
    "also write a chart to FILE (png, svg or pdf by its suffix); needs matplotlib:"
    " pip install 'edgeward[plot]'"
)


def register(sub: Any) -> None:
    """Add `bench policy` and `bench edge` to the `edgeward` parser."""
    bench = sub.add_parser(
        "bench",
        help="measure what a policy or an edge costs (throughput tuning)",
        description="Measure what a traffic policy costs per request and rule, or what an"
        " edge serves with and without an endpoint's policy. Numbers depend on the machine"
        " and its load: compare runs on one machine. Exit codes: 0 ok, 1 errors in a file"
        " or a missing tool, 2 usage.",
    )
    commands = bench.add_subparsers(dest="bench_command", required=True, metavar="COMMAND")
    _register_policy(commands)
    _register_edge(commands)


def _register_policy(commands: Any) -> None:
    from edgeward.policy.cases import DEFAULT_CLIENT_IP

    policy = commands.add_parser(
        "policy",
        help="a policy's cost per request, phase, rule and action (offline)",
        description="Run the cases of a cases file (the format of `edgeward policy test`),"
        " or generated requests when none is given, through the compiled policy many times"
        " on each backend (rust native, python reference). Prints µs per request and per"
        " phase, then each rule's and action's cost, costliest first, with its share of the"
        " total (measured with a timer on each; the rest is the engine's own row).",
    )
    policy.add_argument("file", type=Path, metavar="FILE", help="policy file (YAML or JSON)")
    policy.add_argument(
        "cases",
        type=Path,
        nargs="?",
        metavar="CASES",
        help="cases file (YAML or JSON; docs/policy.md); default: generated requests",
    )
    policy.add_argument(
        "--requests",
        type=_positive_int,
        default=2000,
        metavar="N",
        help="requests per timed run, cycling through the cases (default: 2000)",
    )
    policy.add_argument(
        "--repeat",
        type=_positive_int,
        default=5,
        metavar="N",
        help="timed runs per backend; the median is shown (default: 5)",
    )
    policy.add_argument(
        "--backend",
        choices=("both", "rust", "python"),
        default="both",
        help="which backends to measure (default: both)",
    )
    policy.add_argument(
        "--client-ip",
        default=DEFAULT_CLIENT_IP,
        metavar="ADDRESS",
        help=f"client address of cases whose request sets none (default: {DEFAULT_CLIENT_IP})",
    )
    policy.add_argument(
        "--secrets", type=Path, metavar="FILE", help="what secrets.get reads (as policy test)"
    )
    policy.add_argument("--json", action="store_true", help="print one JSON object instead")
    policy.add_argument("--plot", type=Path, metavar="FILE", help=_PLOT_HELP)
    policy.add_argument("--this-backend", action="store_true", help=argparse.SUPPRESS)
    policy.set_defaults(run=run_policy)


def _register_edge(commands: Any) -> None:
    edge = commands.add_parser(
        "edge",
        help="an edge's req/s, latency and CPU with and without an endpoint's policy",
        description="Start the edge of an edge config twice on loopback (listeners on free"
        " ports, the endpoint's upstream replaced by a built-in one): once as configured,"
        " once without the endpoint's traffic policy. Drive both in turn with wrk (HTTP/1.1;"
        " Debian package wrk) or h2load (--http2; package nghttp2-client) and print req/s,"
        " p50/p99 latency (h2load: mean/max), the edge's CPU µs per request and the ratio"
        " of the two.",
    )
    edge.add_argument(
        "--config", "-c", type=Path, required=True, metavar="FILE", help="edge config"
    )
    edge.add_argument(
        "--endpoint",
        metavar="NAME",
        help="the endpoint to measure (default: the first with a traffic policy)",
    )
    edge.add_argument(
        "--duration",
        type=_positive_float,
        default=5.0,
        metavar="SECONDS",
        help="length of each timed run, whole seconds (default: 5)",
    )
    edge.add_argument(
        "--repeat",
        type=_positive_int,
        default=3,
        metavar="N",
        help="timed runs per edge, alternating; the median is shown (default: 3)",
    )
    edge.add_argument(
        "--connections",
        type=_positive_int,
        default=32,
        metavar="N",
        help="wrk's open connections (default: 32; h2load: 8, 16 streams each)",
    )
    edge.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="an untimed run per edge first (default: 1; 0 for none)",
    )
    edge.add_argument("--path", default="/", help="the request target (default: /)")
    edge.add_argument(
        "--header",
        "-H",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a request header (repeatable); Host is the endpoint's hostname",
    )
    edge.add_argument("--http2", action="store_true", help="HTTP/2 with h2load instead of wrk")
    edge.add_argument("--json", action="store_true", help="print one JSON object instead")
    edge.add_argument("--plot", type=Path, metavar="FILE", help=_PLOT_HELP)
    edge.set_defaults(run=run_edge)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text!r}")
    return value


def _check_plot(args: argparse.Namespace) -> None:
    if args.plot is not None:
        from edgeward.bench import plot

        plot.require()  # fail before measuring, not after


# --- bench policy ----------------------------------------------------------------------


def run_policy(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    from edgeward.bench import policy as bench
    from edgeward.bench.plot import PlotUnavailable

    try:
        loaded = bench.load(
            args.file, args.cases, client_ip=args.client_ip, secrets_file=args.secrets
        )
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.this_backend:
        print(json.dumps(bench.measure(loaded, requests=args.requests, repeat=args.repeat)))
        return 0
    try:
        _check_plot(args)
    except PlotUnavailable as exc:
        print(f"edgeward bench: {exc}", file=sys.stderr)
        return 1
    argv = [str(args.file), *([str(args.cases)] if args.cases else [])]
    argv += ["--requests", str(args.requests), "--repeat", str(args.repeat)]
    argv += ["--client-ip", args.client_ip]
    if args.secrets is not None:
        argv += ["--secrets", str(args.secrets)]
    backends = bench.BACKENDS if args.backend == "both" else (args.backend,)
    if not args.json:
        source = args.cases or "generated requests"
        print(
            f"bench policy {args.file} with {source}: {len(loaded.cases)} requests cycled,"
            f" {args.requests:,} per run x {args.repeat} runs per backend, median run shown",
            file=out,
            flush=True,
        )
    try:
        measured = bench.measure_backends(argv, backends)
    except bench.BackendFailed as exc:
        print(f"edgeward bench: {exc}", file=sys.stderr)
        return 1
    result = {
        "policy": str(args.file),
        "cases": None if args.cases is None else str(args.cases),
        "generated": args.cases is None,
        **measured,
    }
    if args.json:
        print(json.dumps(result, indent=2), file=out)
    else:
        _print_policy(result, out)
    if args.plot is not None and result["backends"]:
        from edgeward.bench import plot

        plot.policy_chart(result, args.plot)
        if not args.json:
            print(f"chart: {args.plot}", file=out)
    return 0 if result["backends"] else 1


def _print_policy(result: dict[str, Any], out: TextIO) -> None:
    from edgeward.bench.policy import ENGINE

    backends = result["backends"]
    for backend, reason in result["unavailable"].items():
        print(f"{backend} backend not measured: {reason}", file=out)
    if not backends:
        return
    phases = sorted({phase for data in backends.values() for phase in data["phases"]})
    table = Table("µs per request, by phase", ["backend", "µs/request", *phases])
    for backend, data in backends.items():
        table.add(backend, data["us_per_request"], *(data["phases"].get(p, 0.0) for p in phases))
    table.print(out)
    for backend, data in backends.items():
        total = data["instrumented_us_per_request"]
        where = ", in the native phase runner" if data.get("native_runner") else ""
        table = Table(
            f"rules and actions, costliest first ({backend} backend{where}; shares of {total:.3g}"
            " µs/request measured with a timer on each)",
            ["rule / action", "phase", "µs/request", "calls/request", "share"],
        )
        for rule in data["rules"]:
            table.add(rule["rule"], rule["phase"], rule["us_per_request"], "", _pct(rule["share"]))
            parts = []
            if rule["expressions"] is not None:
                parts.append(("expressions", rule["expressions"]))
            parts += [(action["type"], action) for action in rule["actions"]]
            parts.sort(key=lambda part: -part[1]["us_per_request"])
            for name, part in parts:
                table.add(
                    f"  {name}",
                    "",
                    part["us_per_request"],
                    part["calls_per_request"],
                    _pct(part["share"]),
                )
        engine = data["engine"]
        table.add(ENGINE, "", engine["us_per_request"], "", _pct(engine["share"]))
        table.print(out)


def _pct(share: float) -> str:
    return f"{share:.1f}%"


# --- bench edge --------------------------------------------------------------------------


def run_edge(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    from edgeward.bench import edge as bench
    from edgeward.bench.plot import PlotUnavailable
    from edgeward.config import load_config
    from edgeward.policy import compile_hooks

    try:
        _check_plot(args)
        config = load_config(str(args.config), compile_hooks)  # as `edgeward check`
        plan = bench.plan(args.config, args.endpoint, config)
    except (EdgewardError, OSError, PlotUnavailable) as exc:
        print(f"edgeward bench: {exc}", file=sys.stderr)
        return 1
    del config
    options = bench.Options(
        duration=args.duration,
        repeat=args.repeat,
        connections=args.connections,
        path=args.path,
        headers=tuple(args.header),
        http2=args.http2,
        warmup=args.warmup,
    )
    if not args.json:
        tool = "h2load -c8 -m16" if args.http2 else f"wrk -t1 -c{args.connections}"
        print(
            f"bench edge {args.config}: endpoint {plan.endpoint} (Host {plan.hostname},"
            f" {plan.scheme}, {args.path}), {tool}, {max(1, round(args.duration))}s x"
            f" {args.repeat} runs per edge, alternating; median run shown; on {interpreter()}",
            file=out,
            flush=True,
        )
    try:
        result = bench.measure(plan, options, _announcer(sys.stderr))
    except MissingTool as exc:
        print(f"edgeward bench: {exc}", file=sys.stderr)
        return 1
    except bench.EdgeFailed as exc:
        print(f"edgeward bench: {exc}", file=sys.stderr)
        return 1
    result["warnings"] = list(bench.warnings(result))
    if args.json:
        print(json.dumps(result, indent=2), file=out)
    else:
        _print_edge(result, out)
    if args.plot is not None:
        from edgeward.bench import plot

        plot.edge_chart(result, args.plot)
        if not args.json:
            print(f"chart: {args.plot}", file=out)
    return 0


def _print_edge(result: dict[str, Any], out: TextIO) -> None:
    latency = ["mean ms", "max ms"] if result["protocol"] == "h2" else ["p50 ms", "p99 ms"]
    table = Table(
        f"{result['protocol']}, endpoint {result['endpoint']}, {result['path']}",
        ["edge", "req/s", *latency, "edge CPU µs/req", "non-2xx", "errors"],
    )
    for key, label in (("with_policy", "with policy"), ("without_policy", "without policy")):
        edge = result["edges"][key]
        table.add(
            label,
            edge["rps"],
            edge["p50_ms"],
            edge["p99_ms"],
            edge["cpu_us_per_request"],
            edge["non_2xx"],
            edge["errors"],
        )
    table.print(out)
    summary = Table("with the policy / without it", ["measure", "ratio"])
    summary.add("throughput (req/s)", result["ratio"] if result["ratio"] is not None else "-")
    cpu = result["cpu_ratio"]
    summary.add("CPU per request (without / with)", cpu if cpu is not None else "-")
    summary.print(out)
    for warning in result["warnings"]:
        print(f"warning: {warning}", file=out)


def _announcer(err: TextIO) -> Any:
    """The progress display on stderr: a bar redrawn on a terminal, one
    line per run otherwise."""
    tty = err.isatty()

    def announce(label: str, number: int, total: int, seconds: float) -> Progress:
        head = f"[{number}/{total}] {label}"
        if not tty:
            print(f"{head}: {seconds:g} s", file=err, flush=True)
            return lambda _elapsed: None
        done = False

        def progress(elapsed: float) -> None:
            nonlocal done
            if done:
                return
            filled = int(20 * min(elapsed / seconds, 1.0)) if seconds else 20
            bar = "#" * filled + "." * (20 - filled)
            err.write(f"\r\x1b[K{head} [{bar}] {elapsed:4.1f}/{seconds:g} s")
            if elapsed >= seconds:
                err.write("\n")
                done = True
            err.flush()

        return progress

    return announce
