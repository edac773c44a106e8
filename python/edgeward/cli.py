"""The `edgeward` console script.

Every subcommand exits with the same codes: 0 when all is well, 1 when the
input is invalid (a config or policy with errors, a failed test case, a
file that cannot be read), 2 for a usage error (an unknown option, a
missing argument: argparse's own code).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

OK = 0
INVALID = 1  # a config, policy or cases file with errors; a failed case
USAGE = 2  # the command line itself is wrong (argparse exits with 2 too)


def version() -> str:
    """The installed distribution's version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("edgeward")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: `edgeward` and every subcommand."""
    parser = argparse.ArgumentParser(
        prog="edgeward",
        description="A self-hosted secure edge: reverse proxy with Traffic Policy.",
        epilog="Exit codes: 0 ok, 1 invalid input (config or policy errors, failed"
        " cases), 2 usage error.",
    )
    parser.add_argument(
        "--version", action="version", version=f"edgeward {version()}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="print the native backend and verify a sample webhook")
    demo.set_defaults(run=_demo)
    from edgeward.policy import compile_hooks
    from edgeward.policy.events import DECISIONS
    from edgeward.proxy import cli as proxy_cli

    proxy_cli.register(sub, compile_hooks, DECISIONS.items)  # serve, check
    from edgeward.policy import cli as policy_cli

    policy_cli.register(sub)  # policy check, policy test
    from edgeward.authtokens import cli as authtoken_cli

    authtoken_cli.register(sub)  # authtoken create, list, revoke
    from edgeward.admin import cli as admin_cli

    admin_cli.register(sub)  # api-key create, list, delete
    from edgeward.admin import store_cli

    store_cli.register(sub)  # store backup, verify
    from edgeward.agent import cli as agent_cli

    agent_cli.register(sub)  # agent http, tcp, tls, start, config
    from edgeward.bench import cli as bench_cli

    bench_cli.register(sub)  # bench policy, bench edge
    return parser


def _demo(args: argparse.Namespace) -> int:
    from edgeward.webhooks import demo

    return demo.run()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
