"""Every example policy of the public documentation whose actions edgeward
supports passes `edgeward policy check` (`policies/` of the conformance data
set, 389 files; see the `conformance` fixture in tests/conftest.py).

The check runs the CLI's own function (`edgeward.policy.cli.run_check`, no
edge config: IP policy references and identity are then warned about, not
errors), and once the real `edgeward` process. A file is excluded only for
a reason listed here, in one place (`exclusion`): an action type edgeward
does not run, forward-internal over TCP/TLS, a policy the corpus itself
marks as broken (`policies-*-errors.tsv`, `policies-doc-mistakes.tsv`), a
placeholder value that can never work, or a docs mistake found here. The
test prints the count checked and the exclusions grouped by reason; it fails
on any other check error, and on an exclusion of ours that has gone stale (a
listed file that now passes, a listed name that is not in the corpus). Some
files the corpus marks as broken pass anyway (a phase written as one mapping
loads with a warning): they stay excluded, as the corpus says.
"""

from __future__ import annotations

import argparse
import collections
import io
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeward import native
from edgeward.document import Document, load_document
from edgeward.policy.actions import ACTIONS, ALIASES
from edgeward.policy.actions.verify_webhook import ALIASES as WEBHOOK_ALIASES
from edgeward.policy.actions.verify_webhook import SNS
from edgeward.policy.cli import run_check

from .helpers import secrets_get_compiles


def example_policies(conformance: Path) -> list[Path]:
    """The public example policies of the conformance data set."""
    policies = sorted((conformance / "policies").glob("*.yaml"))
    assert policies, f"no policies/*.yaml in the conformance data set at {conformance}"
    return policies


class AnyIpPolicy(Mapping[str, Any]):
    """The docs reference IP policies by id (`ipp_...`); here every name
    resolves to an allow-all policy."""

    class _Policy:
        allow = ("0.0.0.0/0", "::/0")
        deny = ()

    def __getitem__(self, key: str) -> Any:
        return self._Policy()

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _source(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    return first.removeprefix("# source: ").strip()


@dataclass(frozen=True)
class Corpus:
    """What the corpus itself marks as broken."""

    # source ("ngrok/ngrok-docs PAGE line N") -> the file listing it
    broken_sources: dict[str, str]
    # file name -> the reason policies-doc-mistakes.tsv gives
    doc_mistakes: dict[str, str]

    @classmethod
    def read(cls, conformance: Path) -> Corpus:
        sources: dict[str, str] = {}
        for listing in sorted(conformance.glob("policies-*-errors.tsv")):
            for line in listing.read_text(encoding="utf-8").splitlines():
                fields = line.split("\t")
                if listing.name == "policies-cel-errors.tsv":
                    sources.setdefault(fields[0].strip(), listing.name)
                elif len(fields) >= 2:  # PAGE, LINE, kind, message
                    source = f"ngrok/ngrok-docs {fields[0].strip()} line {fields[1].strip()}"
                    sources.setdefault(source, listing.name)
        mistakes = {}
        for line in (conformance / "policies-doc-mistakes.tsv").read_text().splitlines():
            name, _, reason = line.partition("\t")
            if name.endswith(".yaml"):
                mistakes[name] = reason.strip()
        return cls(sources, mistakes)


def _actions(data: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(data, Mapping):
        return
    for phase in data.values():
        for rule in [phase] if isinstance(phase, Mapping) else phase or []:
            if not isinstance(rule, Mapping):
                continue
            # An action written where a rule belongs (a docs mistake) still
            # names its type.
            actions = rule.get("actions") or ([rule] if "type" in rule else [])
            for action in [actions] if isinstance(actions, Mapping) else actions:
                if isinstance(action, Mapping) and isinstance(action.get("type"), str):
                    config = action.get("config")
                    yield action["type"], config if isinstance(config, Mapping) else {}


# Placeholder values in the docs that can never work: no edge could load them
# as written (the reader is meant to substitute their own).
_CIDR = "placeholder CIDR"
_PEM = "placeholder PEM ('... certificate ...') where a certificate or key is needed"
PLACEHOLDERS = {
    "gateway_device_gateway_raspbian__L106.yaml": f"{_CIDR} (ALLOWED_IP_ADDRESS_CIDR)",
    "gateway_examples_minecraft__L26.yaml": f"{_CIDR} ($YOUR_IP/32)",
    "gateway_examples_n8n__L113.yaml": f"{_CIDR} ($YOUR_IP/32)",
    "gateway_examples_n8n__L215.yaml": f"{_CIDR} ($YOUR_IP/32)",
    "getting_started_kubernetes_crds__L124.yaml": f"{_CIDR} ($YOUR_PUBLIC_IP)",
    "getting_started_kubernetes_crds__L149.yaml": f"{_CIDR} ($YOUR_PUBLIC_IP)",
    "gateway_examples_ip_restrictions_basic_auth__L44.yaml": f"{_CIDR} ($TRUSTED_IP_FOO/32)",
    "gateway_site_to_site_connectivity_index__L119.yaml": (
        f"{_CIDR} ('allowed ips here (IPv4 or IPv6)')"
    ),
    "gateway_examples_ephemeral_workloads__L149.yaml": (
        f"{_CIDR} ('<TESTING_PROVIDER_IP_RANGE>'), and '!' applied to the string"
        " conn.client_ip (no overload)"
    ),
    "traffic_policy_examples_block_unwanted_requests__L61.yaml": (
        "placeholder forward-internal URL (<Internal endpoint URL Here>)"
    ),
    "gateway_examples_microservices_gateway__L116.yaml": (
        "placeholder JWKS URL ($JWT_PUBLIC_KEY_URL) in jwt-validation"
    ),
    "integrations_webhooks_brex_webhooks__L138.yaml": (
        "placeholder secret where Standard Webhooks needs a base64 key"
    ),
    "integrations_webhooks_clerk_webhooks__L124.yaml": (
        "placeholder secret where Standard Webhooks needs a base64 key"
    ),
    "integrations_webhooks_svix_webhooks__L117.yaml": (
        "placeholder secret where Standard Webhooks needs a base64 key"
    ),
    "integrations_webhooks_sendgrid_webhooks__L128.yaml": (
        "placeholder secret where SendGrid needs a base64 DER P-256 public key"
    ),
    "integrations_webhooks_teams_webhooks__L117.yaml": (
        "placeholder secret where Teams needs a base64 security token"
    ),
    "integrations_webhooks_amazon_sns_webhooks__L122.yaml": (
        "placeholder '{Topic owner}' where sns needs a 12-digit AWS account id"
    ),
    # terminate-tls examples (they load since it is supported)
    "domains_mtls_termination__L73.yaml": _PEM,
    "gateway_device_gateway_agent__L249.yaml": _PEM,
    "gateway_security_dev_productivity_index__L164.yaml": _PEM,
    "k8s_guides_how_to_terminate_tls__L89.yaml": _PEM,
    "snippets_examples_agent_cli_tls_mtls_at_edge__L9.yaml": _PEM,
    "traffic_policy_actions_terminate_tls__L184.yaml": _PEM,
    "guides_migration_modules_to_traffic_policy_actions__L192.yaml": (
        "placeholder CA id 'ca_abc' of the hosted service (edgeward takes the PEM)"
    ),
}

# Examples that are wrong in the docs themselves and that the corpus'
# policies-doc-mistakes.tsv does not list (yet): an engine following the
# public reference rejects them at load.
DOCS_MISTAKES = {
    "integrations_kubernetes_ingress_azure_aks_k8s__L354.yaml": (
        "action fields (type, config) written on the rule, not in its actions list"
    ),
    "traffic_policy_examples_oauth_protection__L138.yaml": "redirect with 'location:', not 'to:'",
    "gateway_examples_front_door_pattern__L71.yaml": "'.includes()' is JavaScript, not CEL",
    "gateway_examples_lock_admin_dashboards__L44.yaml": "'.includes()' is JavaScript, not CEL",
    "gateway_examples_maintenance_mode__L38.yaml": (
        "forward-internal after custom-response in the same rule: unreachable"
        " (a load error by decision, docs/policy.md)"
    ),
    "gateway_examples_multiplex__L81.yaml": "set-vars variables directly in config, not in 'vars'",
    "integrations_guides_linode_gslb_edges__L216.yaml": (
        "'${.ngrok.geo.country_code}' is not CEL (a leading '.')"
    ),
    "snippets_guides_customer_networks_content__L154.yaml": (
        "forward-internal's 'url' on the action, not in its config"
    ),
    "using_ngrok_with_using_mcp__L74.yaml": "deny with a 'body' (deny has only status_code)",
    "gateway_examples_pre_tier_requests__L50.yaml": (
        "status_code (an int) compared with strings ('200')"
    ),
    "snippets_examples_agent_config_tls_mtls_at_edge__L1.yaml": (
        "terminate-tls 'config:' written as a PEM string, not a mapping"
    ),
}

# The groups the exclusions are printed in (and the only ones allowed).
UNSUPPORTED = "not supported"
CORPUS = "marked as broken by the corpus"
PLACEHOLDER = "placeholder value that can never work"
MISTAKE = "docs mistake (not in the corpus' lists)"


@dataclass(frozen=True)
class Exclusion:
    group: str
    reason: str


def exclusion(doc: Document, source: str, corpus: Corpus) -> Exclusion | None:
    """Why this file is not expected to pass `policy check`, or None."""
    name = Path(doc.file).name
    if "secrets.get" in Path(doc.file).read_text() and not secrets_get_compiles():
        return Exclusion(UNSUPPORTED, "secrets.get in the native CEL (cel-rs)")
    data = doc.data if isinstance(doc.data, Mapping) else {}
    if any(t == "forward-internal" for t, _ in _actions({"tcp": data.get("on_tcp_connect")})):
        return Exclusion(UNSUPPORTED, "forward-internal of a TCP connection (on_tcp_connect)")
    for type_name, config in _actions(doc.data):
        canonical = ALIASES.get(type_name, type_name)
        if canonical not in ACTIONS:
            return Exclusion(UNSUPPORTED, f"action type {type_name}")
        if canonical == "forward-internal" and str(config.get("url", "")).startswith(
            ("tcp://", "tls://")
        ):
            return Exclusion(UNSUPPORTED, "forward-internal to a tcp/tls endpoint")
        provider = WEBHOOK_ALIASES.get(config.get("provider"), config.get("provider"))
        if canonical == "verify-webhook" and provider not in native.PROVIDERS | {SNS}:
            return Exclusion(UNSUPPORTED, f"webhook provider {config.get('provider')}")
        if (
            canonical == "restrict-ips"
            and config.get("deny")
            and not (config.get("allow") or config.get("ip_policies"))
        ):
            return Exclusion(UNSUPPORTED, "deny-only restrict-ips (refused by decision)")
    if source in corpus.broken_sources:
        return Exclusion(CORPUS, f"listed in {corpus.broken_sources[source]}")
    if name in corpus.doc_mistakes:
        return Exclusion(CORPUS, f"policies-doc-mistakes.tsv: {corpus.doc_mistakes[name]}")
    if name in PLACEHOLDERS:
        return Exclusion(PLACEHOLDER, PLACEHOLDERS[name])
    if name in DOCS_MISTAKES:
        return Exclusion(MISTAKE, DOCS_MISTAKES[name])
    return None


def policy_check(path: Path) -> tuple[int, str]:
    """`edgeward policy check PATH` through the CLI's own function."""
    out = io.StringIO()
    status = run_check(argparse.Namespace(file=path, secrets=None), out)
    return status, out.getvalue()


def _report(checked: int, total: int, excluded: dict[Exclusion, list[str]]) -> str:
    lines = [f"{checked} of {total} example policies checked; excluded by reason:"]
    for group in (UNSUPPORTED, CORPUS, PLACEHOLDER, MISTAKE):
        entries = {e: names for e, names in excluded.items() if e.group == group}
        lines.append(f"  {sum(map(len, entries.values())):4}  {group}")
        for entry, names in sorted(entries.items(), key=lambda kv: (-len(kv[1]), kv[0].reason)):
            lines.append(f"        {len(names):4}  {entry.reason}")
    return "\n".join(lines)


def test_every_supported_example_policy_passes_policy_check(conformance: Path) -> None:
    policies = example_policies(conformance)
    corpus = Corpus.read(conformance)
    excluded: dict[Exclusion, list[str]] = collections.defaultdict(list)
    failures: list[str] = []
    stale: list[str] = []
    checked = 0
    listed_but_pass = 0  # marked broken by the corpus, yet loads (leniently)
    for path in policies:
        reason = exclusion(load_document(path), _source(path), corpus)
        status, output = policy_check(path)
        if reason is not None:
            excluded[reason].append(path.name)
            listed_but_pass += status == 0 and reason.group == CORPUS
            if status == 0 and reason.group != CORPUS:
                stale.append(f"{path.name} passes policy check but is excluded: {reason.reason}")
            continue
        checked += 1
        if status != 0:
            failures.append(f"{path.name} ({_source(path)}):\n{output}")
    print("\n" + _report(checked, len(policies), excluded))
    print(f"  ({listed_but_pass} of those the corpus marks as broken pass policy check anyway)")
    names = {path.name for path in policies}
    unknown = sorted((PLACEHOLDERS.keys() | DOCS_MISTAKES.keys()) - names)
    used = {name for entry, listed in excluded.items() for name in listed}
    unused = sorted((PLACEHOLDERS.keys() | DOCS_MISTAKES.keys()) - used - set(unknown))
    assert not failures, f"{len(failures)} supported example(s) fail:\n" + "\n".join(failures)
    assert not stale, "stale exclusions:\n" + "\n".join(stale)
    assert not unknown, f"excluded names not in the corpus: {unknown}"
    assert not unused, f"exclusions never applied (another reason came first): {unused}"
    assert checked > 250


def test_the_edgeward_cli_checks_an_example(conformance: Path) -> None:
    """The same verdicts from the real `edgeward policy check` process: an
    identity example without an edge config passes with warnings, a
    placeholder CIDR fails with its location."""
    policies = conformance / "policies"
    oidc = policies / "gateway_examples_route_by_oidc__L54.yaml"
    cidr = policies / "gateway_examples_minecraft__L26.yaml"
    command = [sys.executable, "-m", "edgeward.cli", "policy", "check"]
    ok = subprocess.run(
        [*command, str(oidc)], check=False, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "warning" in ok.stdout and ": ok (" in ok.stdout
    bad = subprocess.run(
        [*command, str(cidr)], check=False, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "'$YOUR_IP/32' is not a valid CIDR" in bad.stdout
    assert f"{cidr.name}:7:7:" in bad.stdout


def test_identity_examples_pass_without_an_edge_config(conformance: Path) -> None:
    """oauth and openid-connect examples need the edge config's identity:
    to run; `policy check` without one warns that it is needed instead of
    failing (docs/identity.md §1); no identity example is excluded for it."""
    corpus = Corpus.read(conformance)
    identity = [
        path
        for path in example_policies(conformance)
        if any(
            ALIASES.get(t, t) in ("oauth", "openid-connect")
            for t, _ in _actions(load_document(path).data)
        )
    ]
    assert len(identity) > 30
    checked = 0
    for path in identity:
        if exclusion(load_document(path), _source(path), corpus) is not None:
            continue
        status, output = policy_check(path)
        assert status == 0, output
        assert "warning: oauth needs the edge config's identity: section" in output or (
            "warning: openid-connect needs the edge config's identity: section" in output
        ), output
        checked += 1
    assert checked > 30
