"""`edgeward agent http|tcp|tls|start|config`: publish local apps through an
edge (docs/agents.md). Exit codes: 0 stopped by Ctrl-C/SIGTERM, 1 refused
(authtoken, bind) or invalid input, 2 usage."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from edgeward.errors import EdgewardError


def register(sub: Any) -> None:
    agent = sub.add_parser("agent", help="publish a local app through an edge (an agent)")
    commands = agent.add_subparsers(dest="agent_command", required=True)
    for kind, helptext, example in (
        ("http", "an HTTP(S) endpoint for a local web app", "8080, localhost:3000, https://x:8443"),
        ("tcp", "a TCP endpoint (a port of the edge) for a local TCP service", "22, db.local:5432"),
        ("tls", "a TLS endpoint, passed through by SNI, for a local TLS server", "8443"),
    ):
        cmd = commands.add_parser(kind, help=helptext)
        cmd.add_argument("upstream", help=f"where to forward: {example}")
        cmd.add_argument(
            "--url",
            help=f"the endpoint's URL ({kind}://NAME...; a name ending in .internal is reachable"
            " only through forward-internal); default: the edge picks one",
        )
        cmd.add_argument("--traffic-policy-file", help="a traffic policy (YAML or JSON) to send")
        cmd.add_argument(
            "--pooling-enabled",
            action="store_true",
            help="share the URL with other agents that enable pooling too",
        )
        _connection_options(cmd)
        cmd.set_defaults(run=_run_one, kind=kind)
    start = commands.add_parser("start", help="start endpoints of an agent config file")
    start.add_argument("names", nargs="*", help="endpoint names (default: all)")
    start.add_argument("--all", action="store_true", help="every endpoint of the file")
    _connection_options(start)
    start.set_defaults(run=_run_start)
    config = commands.add_parser("config", help="edit the agent config file")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    add = config_commands.add_parser("add-authtoken", help="store the authtoken in the file")
    add.add_argument("token", help="the authtoken (from `edgeward authtoken create`)")
    add.add_argument(
        "--config", help="the agent config file (default ~/.config/edgeward/agent.yml)"
    )
    add.set_defaults(run=_add_authtoken)


def _connection_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--config", help="agent config file (default ~/.config/edgeward/agent.yml if present)"
    )
    cmd.add_argument("--authtoken", help="default: EDGEWARD_AUTHTOKEN, then the config file")
    cmd.add_argument(
        "--server", help="the edge's agent ingress, HOST:PORT (default localhost:4443)"
    )
    cmd.add_argument("--ca", help="CA bundle (PEM) the ingress's certificate is checked against")
    cmd.add_argument("--quiet", action="store_true", help="no line per request")


def _run_one(args: argparse.Namespace) -> int:
    from edgeward.agent import config

    try:
        kind = args.kind
        if args.url:
            url_kind = config.kind_of_url(args.url)
            if kind == "http" and url_kind in ("http", "https"):
                kind = url_kind
            elif url_kind != kind:
                raise config.AgentConfigError(f"--url {args.url}: not a {kind}:// URL")
        upstream = config.parse_upstream(args.upstream, kind)
        policy = Path(args.traffic_policy_file).read_text() if args.traffic_policy_file else None
        spec = config.EndpointSpec(
            name=kind,
            kind=kind if args.url or kind != "http" else "https",
            url=args.url or "",
            upstream=upstream,
            traffic_policy=policy,
            pooling_enabled=args.pooling_enabled,
        )
        file = config.read_file(Path(args.config) if args.config else None, required=False)
        settings = config.settings(
            file, authtoken=args.authtoken, server=args.server, ca=args.ca, endpoints=(spec,)
        )
    except (EdgewardError, OSError) as exc:
        print(f"edgeward agent: {exc}", file=sys.stderr)
        return 1
    return _run(settings, args.quiet)


def _run_start(args: argparse.Namespace) -> int:
    from edgeward.agent import config

    try:
        file = config.read_file(Path(args.config) if args.config else None, required=True)
        names = list(args.names)
        if args.all or not names:
            endpoints = tuple(file.endpoints.values())
        else:
            unknown = [n for n in names if n not in file.endpoints]
            if unknown:
                raise config.AgentConfigError(
                    f"no endpoint named {', '.join(unknown)} in {file.path}"
                    f" (known: {', '.join(file.endpoints) or 'none'})"
                )
            endpoints = tuple(file.endpoints[n] for n in names)
        if not endpoints:
            raise config.AgentConfigError(f"{file.path}: no endpoints to start")
        settings = config.settings(
            file, authtoken=args.authtoken, server=args.server, ca=args.ca, endpoints=endpoints
        )
    except (EdgewardError, OSError) as exc:
        print(f"edgeward agent: {exc}", file=sys.stderr)
        return 1
    return _run(settings, args.quiet)


def _run(settings: Any, quiet: bool) -> int:
    import trio

    from edgeward.agent.console import Console
    from edgeward.agent.run import run_agent

    return trio.run(run_agent, settings, Console(quiet=quiet))


def _add_authtoken(args: argparse.Namespace) -> int:
    from edgeward.agent import config

    try:
        path = config.add_authtoken(args.token, Path(args.config) if args.config else None)
    except (EdgewardError, OSError) as exc:
        print(f"edgeward agent: {exc}", file=sys.stderr)
        return 1
    print(f"Authtoken saved to {path}")
    return 0
