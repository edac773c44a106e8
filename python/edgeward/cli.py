"""The `edgeward` console script."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edgeward", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="print the native backend and verify a sample webhook")
    from edgeward.proxy import cli as proxy_cli

    proxy_cli.register(sub)  # serve, check
    from edgeward.policy import cli as policy_cli

    policy_cli.register(sub)  # policy check, policy test
    from edgeward.authtokens import cli as authtoken_cli

    authtoken_cli.register(sub)  # authtoken create, list, revoke
    from edgeward.agent import cli as agent_cli

    agent_cli.register(sub)  # agent http, tcp, tls, start, config
    args = parser.parse_args(argv)
    if hasattr(args, "run"):
        return int(args.run(args))
    if args.command == "demo":
        from edgeward.webhooks import demo

        return demo.run()
    return 2


if __name__ == "__main__":
    sys.exit(main())
