"""Every example policy of the public documentation whose actions edgeward
supports must load (`policies/` of the conformance data set, 389 files; see
the `conformance` fixture in tests/conftest.py).

Files are excluded only for a reason listed here: an action type edgeward
does not run, a webhook provider the verifier lacks, a deny-only
restrict-ips (refused by decision, docs/policy.md), or a policy the corpus
itself lists as broken (`policies-*-errors.tsv`). The test prints the
exclusions and fails on any other load error.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from edgeward import native
from edgeward.document import Document, load_document
from edgeward.policy import PolicyError, compile_policy
from edgeward.policy.actions import ACTIONS, ALIASES
from edgeward.policy.actions.verify_webhook import ALIASES as WEBHOOK_ALIASES
from edgeward.policy.actions.verify_webhook import SNS

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


def _broken_sources(conformance: Path) -> set[str]:
    sources = set()
    for line in (conformance / "policies-cel-errors.tsv").read_text().splitlines():
        sources.add(line.split("\t")[0].strip())
    return sources


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
                    yield action["type"], action.get("config") or {}


# Examples that are wrong in the docs themselves (beyond policies-*-errors.tsv).
_PLACEHOLDER_CIDR = "placeholder CIDR ($YOUR_IP...) in the docs"
_PLACEHOLDER_KEY = "placeholder secret where the provider needs a base64 key"
DOCS_MISTAKES = {
    "gateway_device_gateway_raspbian__L106.yaml": _PLACEHOLDER_CIDR,
    "gateway_examples_minecraft__L26.yaml": _PLACEHOLDER_CIDR,
    "gateway_examples_n8n__L113.yaml": _PLACEHOLDER_CIDR,
    "gateway_examples_n8n__L215.yaml": _PLACEHOLDER_CIDR,
    "getting_started_kubernetes_crds__L124.yaml": _PLACEHOLDER_CIDR,
    "gateway_examples_odoo__L81.yaml": "rule field 'if:' (not the format) and a placeholder CIDR",
    "gateway_examples_odoo__L102.yaml": "rule field 'if:' (not the format)",
    "gateway_examples_wordpress__L59.yaml": "'.includes()' is not CEL; placeholder CIDR",
    "integrations_webhooks_brex_webhooks__L138.yaml": _PLACEHOLDER_KEY,
    "integrations_webhooks_clerk_webhooks__L124.yaml": _PLACEHOLDER_KEY,
    "integrations_webhooks_svix_webhooks__L117.yaml": _PLACEHOLDER_KEY,
    "integrations_webhooks_sendgrid_webhooks__L128.yaml": _PLACEHOLDER_KEY,
    "integrations_webhooks_teams_webhooks__L117.yaml": _PLACEHOLDER_KEY,
    "integrations_webhooks_amazon_sns_webhooks__L122.yaml": (
        "placeholder '{Topic owner}' where sns needs a 12-digit account id"
    ),
    "traffic_policy_actions_set_vars__L288.yaml": "'request.headers' (a typo of 'req.headers')",
    "traffic_policy_examples_event_logging__L16.yaml": "compares res.status_code with a string",
    "traffic_policy_actions_set_vars__L343.yaml": "'sort(x, y, expr)' is not a CEL function",
    "integrations_kubernetes_ingress_azure_aks_k8s__L354.yaml": "an action where a rule belongs",
    "integrations_kubernetes_ingress_azure_aks_k8s__L399.yaml": "an action where a rule belongs",
    "traffic_policy_examples_oauth_protection__L138.yaml": "redirect with 'location:', not 'to:'",
    "traffic_policy_actions_response_body_find_replace__L174.yaml": (
        "res.headers values are lists: list.contains(string) has no overload"
    ),
    # found once forward-internal loaded (it excluded them before)
    "gateway_examples_ephemeral_workloads__L149.yaml": "'!' applied to a string (placeholder CIDR)",
    "gateway_examples_front_door_pattern__L71.yaml": "'.includes()' is not CEL",
    "gateway_examples_lock_admin_dashboards__L44.yaml": "'.includes()' is not CEL",
    "gateway_examples_ip_restrictions_basic_auth__L44.yaml": _PLACEHOLDER_CIDR,
    "gateway_site_to_site_connectivity_index__L119.yaml": _PLACEHOLDER_CIDR,
    "getting_started_kubernetes_crds__L149.yaml": _PLACEHOLDER_CIDR,
    "gateway_examples_maintenance_mode__L38.yaml": "an action after custom-response (unreachable)",
    "gateway_examples_multiplex__L81.yaml": "set-vars without 'vars'",
    "gateway_examples_rewrite_headers_redirects__L41.yaml": "'url.parse' is not a policy function",
    "integrations_guides_linode_gslb_edges__L216.yaml": "'${.ngrok...}' is not CEL",
    "snippets_guides_customer_networks_content__L154.yaml": "an action's 'url' outside 'config'",
    "traffic_policy_examples_block_unwanted_requests__L61.yaml": "placeholder URL (<...>)",
    "using_ngrok_with_using_mcp__L74.yaml": "deny with a 'body' (deny has none)",
    "gateway_examples_pre_tier_requests__L50.yaml": "compares a status code with a string",
}


def exclusion(doc: Document, source: str, broken: set[str]) -> str | None:
    """Why this file is not expected to load, or None."""
    if "secrets.get" in Path(doc.file).read_text() and not secrets_get_compiles():
        return "the native CEL does not resolve secrets.get yet (cel-rs)"
    mistake = DOCS_MISTAKES.get(Path(doc.file).name)
    if mistake is not None:
        return f"docs mistake: {mistake}"
    data = doc.data if isinstance(doc.data, Mapping) else {}
    if any(t == "forward-internal" for t, _ in _actions({"tcp": data.get("on_tcp_connect")})):
        return "forward-internal of a TCP connection (on_tcp_connect): not supported"
    for type_name, config in _actions(doc.data):
        canonical = ALIASES.get(type_name, type_name)
        if canonical not in ACTIONS:
            return f"unsupported action type {type_name}"
        if canonical == "forward-internal" and str(config.get("url", "")).startswith(
            ("tcp://", "tls://")
        ):
            return "forward-internal to a tcp/tls endpoint: not supported"
        provider = WEBHOOK_ALIASES.get(config.get("provider"), config.get("provider"))
        if canonical == "verify-webhook" and provider not in native.PROVIDERS | {SNS}:
            return f"webhook provider {config.get('provider')} not supported"
        if (
            canonical == "restrict-ips"
            and config.get("deny")
            and not (config.get("allow") or config.get("ip_policies"))
        ):
            return "deny-only restrict-ips (refused by decision)"
    if source in broken:
        return "listed as broken in policies-cel-errors.tsv"
    return None


def test_every_supported_example_policy_loads(conformance: Path) -> None:
    policies = example_policies(conformance)
    broken = _broken_sources(conformance)
    excluded: dict[str, list[str]] = collections.defaultdict(list)
    failures: list[str] = []
    loaded = 0
    for path in policies:
        doc = load_document(path)
        reason = exclusion(doc, _source(path), broken)
        if reason is not None:
            excluded[reason].append(path.name)
            continue
        try:
            compile_policy(doc, ip_policies=AnyIpPolicy())
        except PolicyError as exc:
            failures.append(
                f"{path.name} ({_source(path)}):\n  " + "\n  ".join(map(str, exc.errors))
            )
            continue
        loaded += 1
    print(f"\n{loaded} of {len(policies)} example policies loaded; excluded:")
    for reason, names in sorted(excluded.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(names):4}  {reason}")
    assert not failures, "\n".join(failures)
    assert loaded > 100
