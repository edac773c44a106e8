"""`edgeward serve` and `edgeward check`."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from edgeward.config import PolicyFactory, load_config
from edgeward.errors import EdgewardError

if TYPE_CHECKING:  # prometheus_client is imported only by `serve`
    from edgeward.proxy.metrics import DecisionCounts


def register(sub: Any, policy_factory: PolicyFactory, decisions: DecisionCounts) -> None:
    """Add the data-plane subcommands to the `edgeward` parser. The policy
    engine is given by the caller (the proxy does not depend on it):
    `policy_factory` compiles every traffic policy, `decisions` feeds the
    metrics."""
    serve = sub.add_parser("serve", help="run the edge proxy")
    serve.add_argument("--config", "-c", required=True, help="edge config (YAML or JSON)")
    serve.add_argument(
        "--http1", choices=("fast", "h11"), default="fast", help="HTTP/1.1 codec (default: fast)"
    )
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the ports (SO_REUSEPORT)"
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="least severe server log messages shown (default: info)",
    )
    serve.add_argument(
        "--log-format",
        default="auto",
        choices=("auto", "json", "console"),
        help="server log, access log and events on stdout/stderr: JSON lines, or readable"
        " one-line text (default auto: text on a terminal, JSON otherwise; files are JSON)",
    )
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(run=_serve, policy_factory=policy_factory, decisions=decisions)
    _register_check(sub, policy_factory)


def _register_check(sub: Any, policy_factory: PolicyFactory) -> None:
    check = sub.add_parser(
        "check",
        help="validate an edge config and compile its policies, without serving",
        description="Validate an edge config and compile its traffic policies, without"
        " serving. Exit codes: 0 valid, 1 errors (printed with file:line), 2 usage.",
    )
    check.add_argument("file", nargs="?", metavar="FILE", help="edge config (YAML or JSON)")
    check.add_argument(
        "--config", "-c", metavar="FILE", help="the same as FILE (the spelling serve takes)"
    )
    check.set_defaults(run=_check, parser=check, policy_factory=policy_factory)


def _check(args: argparse.Namespace) -> int:
    if args.file is not None and args.config is not None:
        args.parser.error("give the config file once: FILE or --config FILE")
    path = args.file if args.file is not None else args.config
    if path is None:
        args.parser.error("the following arguments are required: FILE")
    try:
        config = load_config(path, args.policy_factory)
    except EdgewardError as exc:
        print(f"edgeward check: {exc}", file=sys.stderr)
        return 1
    policies = [x.policy for x in config.listeners] + [x.policy for x in config.endpoints]
    for policy in policies:  # a policy's load warnings (e.g. it reads IP data the config lacks)
        for warning in getattr(policy, "warnings", ()):
            print(warning)
    print(f"{path}: OK ({len(config.listeners)} listeners, {len(config.endpoints)} endpoints)")
    return 0


GC_YOUNG_THRESHOLD = 10_000
"""Net new container objects between two collections of the young
generation (Python's default: 700)."""


def _tune_collector() -> None:
    """The garbage collector, for a process that lives long and serves many
    requests at once.

    What importing the edge makes (tens of thousands of objects: modules,
    classes, functions) lives as long as the process: frozen, out of the
    collector's view, so that its full passes (a pause every request in
    flight waits for: ~50 ms before, ~4 ms after, under h2load -c8 -m16)
    walk only what configs and requests made. The config is loaded after:
    a reload must be able to collect the previous one.

    Most of a request's objects are freed by reference counting; with
    hundreds of streams in flight the default threshold still ran a young
    collection every ~100 requests, each walking the live streams' objects
    (~10 µs per request in all). At 10,000 such collections are rare, and
    what reference cycles leave behind is still collected, in batches."""
    import edgeward.proxy.server  # noqa: F401  (the edge and what it imports)

    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _serve(args: argparse.Namespace) -> int:
    """Run the edge. A problem with the config or the environment (a port
    in use, a certificate that cannot be loaded) is one line on stderr and
    exit 1, never a traceback."""
    from edgeward import linefile

    linefile.set_format(args.log_format)
    _log_to_stderr(args.log_level)
    _tune_collector()
    try:
        config = load_config(args.config, args.policy_factory)
    except (EdgewardError, OSError) as exc:
        return _startup_failed(exc)
    if args.workers > 1:
        if config.agent_ingress is not None:  # agents' sessions live in one process
            return _startup_failed(EdgewardError("agent_ingress needs --workers 1"))
        if config.api is not None:  # the API sees this process's agents
            return _startup_failed(EdgewardError("api needs --workers 1"))
        return _supervise(args)
    import trio

    from edgeward.proxy.server import Server

    try:
        server = Server(
            config,
            codec=args.http1,
            reload=lambda: load_config(args.config, args.policy_factory),
            reuse_port=args.reuse_port,
            policy_factory=args.policy_factory,
            decisions=args.decisions,
        )
    except (EdgewardError, OSError) as exc:
        return _startup_failed(exc)
    del config  # the server's generation holds it; a reload must be able to drop it

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.handle_signals)
            await server.serve()
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    except OSError as exc:
        return _startup_failed(exc)
    except BaseExceptionGroup as group:
        failed, rest = group.split(OSError)  # the environment failed under us
        if failed is None or rest is not None:
            raise
        return _startup_failed(_first(failed))
    return 0


def _log_to_stderr(level: str) -> None:
    """The server log through a `linefile` output: one timestamp format
    with the access log and events, JSON or text, never blocking."""
    from edgeward import linefile

    root = logging.getLogger()
    root.setLevel(level.upper())
    output = linefile.open_output("stderr", what="server log", log=logging.getLogger("edgeward"))
    root.addHandler(linefile.LogHandler(output))


def _startup_failed(exc: BaseException) -> int:
    from edgeward import linefile

    for output in linefile.outputs():
        output.flush(1.0)  # what was logged so far comes first
    if isinstance(exc, OSError) and not isinstance(exc, EdgewardError):
        where = f": {exc.filename}" if exc.filename else ""
        message = f"{exc.strerror or exc}{where}"
    else:
        message = str(exc)
    print(f"edgeward serve: {message}", file=sys.stderr, flush=True)
    return 1


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf


def _supervise(args: argparse.Namespace) -> int:
    """N single-worker processes, each binding the same ports with
    SO_REUSEPORT (the kernel spreads connections). Signals are passed on:
    SIGHUP reloads every worker, SIGTERM/SIGINT drains them."""
    command = [
        sys.executable,
        "-m",
        "edgeward.cli",
        "serve",
        "--config",
        args.config,
        "--http1",
        args.http1,
    ]
    command += ["--log-level", args.log_level, "--log-format", args.log_format, "--reuse-port"]
    children = [subprocess.Popen(command) for _ in range(args.workers)]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    codes = [child.wait() for child in children]
    return max(codes, default=0)


__all__ = ["register"]
