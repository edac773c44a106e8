"""`edgeward policy check FILE` and `edgeward policy test FILE CASES`."""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from edgeward.document import Document, load_document
from edgeward.errors import ConfigError
from edgeward.policy import compile_policy
from edgeward.policy.cases import (
    DEFAULT_CLIENT_IP,
    Case,
    CaseClock,
    Outcome,
    read_cases,
    run_case,
)
from edgeward.policy.engine import CompiledPolicy
from edgeward.policy.errors import PolicyError
from edgeward.policy.events import ListSink
from edgeward.secrets import Secrets, load_secrets


def register(sub: Any) -> None:
    """Add `policy check` and `policy test` to the `edgeward` parser."""
    policy = sub.add_parser(
        "policy",
        help="check and test Traffic Policy documents",
        description="Check and test Traffic Policy documents offline. Exit codes: 0 ok,"
        " 1 errors in a file or failed cases, 2 usage.",
    )
    commands = policy.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check",
        help="validate a policy file",
        description="Load a policy file and print every error and warning (exit 1 on errors).",
    )
    check.add_argument("file", type=Path, metavar="FILE", help="policy file (YAML or JSON)")
    check.add_argument("--secrets", type=Path, help=_SECRETS_HELP)
    check.set_defaults(run=run_check)
    test = commands.add_parser(
        "test",
        help="run recorded requests through a policy",
        description="Run the cases of a cases file through a policy, offline, and print"
        " what each rule and action did (exit 1 when a case fails). A case whose request"
        " sets no client_ip comes from --client-ip, by default"
        f" {DEFAULT_CLIENT_IP} (TEST-NET-1, RFC 5737: no real client has it).",
    )
    test.add_argument("file", type=Path, metavar="FILE", help="policy file (YAML or JSON)")
    test.add_argument(
        "cases", type=Path, metavar="CASES", help="cases file (YAML or JSON; docs/policy.md)"
    )
    test.add_argument(
        "--client-ip",
        default=DEFAULT_CLIENT_IP,
        type=_ip_address,
        metavar="ADDRESS",
        help="client address of cases whose request sets no client_ip"
        f" (default: {DEFAULT_CLIENT_IP})",
    )
    test.add_argument(
        "-q", "--quiet", action="store_true", help="print failures and the summary only"
    )
    test.add_argument("--secrets", type=Path, help=_SECRETS_HELP)
    test.set_defaults(run=run_test)


def _ip_address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IP address: {text!r}") from None


_SECRETS_HELP = (
    "what secrets.get reads: a file of vaults as the edge config's secrets: section"
    " (or an edge config); without it secret lookups are warned about, not checked"
)


def _secrets(args: argparse.Namespace) -> Secrets | None:
    path: Path | None = getattr(args, "secrets", None)
    return None if path is None else load_secrets(path)


def run_check(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        policy = compile_policy(
            load_document(args.file, what="policy file"), secrets=_secrets(args)
        )
    except PolicyError as exc:
        for diagnostic in exc.diagnostics:
            print(diagnostic, file=out)
        print(f"{args.file}: {len(exc.errors)} error(s)", file=out)
        return 1
    except ConfigError as exc:
        print(exc, file=out)
        return 1
    for warning in policy.warnings:
        print(warning, file=out)
    print(f"{args.file}: ok ({summary(policy)})", file=out)
    return 0


def summary(policy: CompiledPolicy) -> str:
    """What a checked policy holds: "2 on_http_request, 1 on_http_response"."""
    counts = ", ".join(
        f"{len(rules)} {phase.value}" for phase, rules in policy.rules.items() if rules
    )
    return counts or "no rules"


def run_test(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        results = run_cases(
            load_document(args.file, what="policy file"),
            load_document(args.cases, what="cases file"),
            client_ip=getattr(args, "client_ip", DEFAULT_CLIENT_IP),
            secrets=_secrets(args),
        )
    except ConfigError as exc:
        print(exc, file=out)
        return 1
    failed = 0
    for case, outcome in results:
        failed += not outcome.passed
        if not args.quiet or not outcome.passed:
            print_case(case.name, outcome, out)
    print(f"{len(results) - failed} passed, {failed} failed", file=out)
    return 1 if failed else 0


def run_cases(
    policy_document: Document,
    cases_document: Document,
    *,
    client_ip: str = DEFAULT_CLIENT_IP,
    secrets: Secrets | None = None,
) -> list[tuple[Case, Outcome]]:
    """Every case of a cases document through a policy document, offline
    (`policy test`, and the console's policy editor). Raises `ConfigError`
    (a `PolicyError` for the policy) for a document that does not load."""
    cases, ip_policies = read_cases(cases_document, client_ip=client_ip)
    clock = CaseClock()
    sink = ListSink()
    policy = compile_policy(
        policy_document, ip_policies=ip_policies, events=sink, clock=clock, secrets=secrets
    )
    return [(case, run_case(policy, case, clock, sink.events)) for case in cases]


def print_case(name: str, outcome: Outcome, out: TextIO) -> None:
    """What one case did, rule by rule, and whether it passed."""
    print(f"case: {name}", file=out)
    phase = None
    for entry in outcome.trace:
        if entry.phase != phase:
            phase = entry.phase
            print(f"  {phase.value}", file=out)
        if entry.action is None:
            print(f"    rule {entry.rule}: {entry.outcome}", file=out)
        else:
            results = f"  {_compact(entry.results)}" if entry.results else ""
            print(f"      {entry.action}: {entry.outcome}{results}", file=out)
    for event in outcome.events:
        if event.verdict == "log":
            print(f"  log: {_compact(event.metadata)}", file=out)
    if outcome.closed:
        answer = "connection closed"
    elif outcome.forwarded is not None:
        head = outcome.forwarded
        url = f"{head.scheme.decode()}://{head.authority.decode()}{head.target.decode()}"
        answer = f"{outcome.status} (forwarded {head.method.decode()} {url})"
    else:
        answer = f"{outcome.status} from the edge" + (
            f" [{outcome.error_code}]" if outcome.error_code else ""
        )
    print(f"  answer: {answer}", file=out)
    for failure in outcome.failures:
        print(f"  FAIL {failure}", file=out)
    print("  ok" if outcome.passed else "  FAILED", file=out)


def _compact(value: Any) -> str:
    return json.dumps(_plain(value), default=str, ensure_ascii=False, separators=(", ", ": "))


def _plain(value: Any) -> Any:
    from collections.abc import Mapping

    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
