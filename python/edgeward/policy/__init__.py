"""Traffic Policy: documents, the engine, the actions (see docs/policy.md).

    compiler = PolicyCompiler(events=open_event_sink("stdout"))
    hooks = compiler(source, ip_policies)      # an edgeward.hooks.PolicyHooks

`compile_hooks` is the compiler the edge uses (events where the edge
config's `events:` says).

A bad document raises `PolicyError` listing every problem with its file,
line, rule and action.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from edgeward.document import SourceDocument
from edgeward.identity import AuthHostHooks, IdentitySettings, Runtime, Runtimes
from edgeward.identity.runtime import probe
from edgeward.ipintel import IpIntelligence
from edgeward.policy.config import EngineOptions, IpPolicyRules
from edgeward.policy.engine import CompiledPolicy, PolicyExchange
from edgeward.policy.errors import ActionError, Diagnostic, ErrorCode, PolicyError, Severity
from edgeward.policy.events import (
    BUS_SINK,
    EventSink,
    NullSink,
    PolicyEvent,
    fan_out,
    open_event_sink,
)
from edgeward.policy.loader import LoadedPolicy, load
from edgeward.policy.model import Phase
from edgeward.policy.targets import ExternalTargets, TargetRules

__all__ = [
    "ActionError",
    "CompiledPolicy",
    "Diagnostic",
    "EngineOptions",
    "ErrorCode",
    "EventSink",
    "Phase",
    "PolicyCompiler",
    "PolicyError",
    "PolicyEvent",
    "PolicyExchange",
    "Severity",
    "compile_hooks",
    "compile_policy",
    "open_event_sink",
]


def compile_policy(
    document: SourceDocument,
    *,
    ip_policies: Mapping[str, IpPolicyRules] | None = None,
    # The edge config's `http_request` (http-request targets); None: unknown,
    # and then nothing outside the edge may be called.
    http_request: TargetRules | None = None,
    events: EventSink | None = None,
    body_limit: int | None = None,
    clock: Callable[[], float] | None = None,
    secrets: Mapping[str, Mapping[str, str]] | None = None,
    identity: Runtime | None = None,
    edge: bool = False,
    ip_intelligence: IpIntelligence | None = None,
    owasp_crs_rules_dir: str | None = None,
) -> CompiledPolicy:
    """Compile a parsed document (`edgeward.document.Document`).
    `ip_policies` are the edge config's named IP policies; None means they
    are unknown (references are then only warned about: `policy check`).
    `secrets` are what `secrets.get` reads (the edge config's `secrets:`);
    None means unknown: lookups compile, are warned about, and fail at run
    time (docs/cel.md §11.6). `identity` is the edge's identity runtime;
    `edge` says the policy is compiled for an edge (`oauth` without
    `identity:` is then an error). `owasp_crs_rules_dir` is the edge
    config's `owasp_crs.rules_dir` (None: Debian's CRS package).
    `ip_intelligence` is the edge config's (None: unknown); a policy reading
    data it lacks loads with a warning."""
    options = EngineOptions(
        clock=clock,
        secrets=secrets,
        identity=identity,
        edge=edge,
        ip_intelligence=ip_intelligence,
        owasp_crs_rules_dir=owasp_crs_rules_dir,
    )
    if body_limit is not None:
        options = replace(options, body_limit=body_limit)
    options = replace(options, http_request=ExternalTargets.from_rules(http_request))
    loaded = load(document, ip_policies=ip_policies, options=options)
    if loaded.errors:
        raise PolicyError(loaded.diagnostics)
    if secrets is None and options.cel.secrets_read:
        loaded = _warn_unknown_secrets(document, loaded, options.cel.secrets_read)
    loaded = _warn_missing_ip_data(document, loaded, ip_intelligence)
    return CompiledPolicy(loaded, events=events, options=options)


# What a variable path needs from `ip_intelligence`, by the part after
# `conn.client_ip.` / `conn.server_ip.` (or `conn.geo`).
_IP_DATA = {
    "geo": ("geo", "geo_db"),
    "as": ("as", "asn_db"),
    "categories": ("categories", "categories, tor_exit_nodes or blocklists"),
    "is_tor_node": ("tor", "tor_exit_nodes (or categories: {proxy.anonymous.tor: ...})"),
    "is_on_blocklist": ("blocklist", "blocklists"),
}


def _warn_missing_ip_data(
    document: SourceDocument, loaded: LoadedPolicy, intel: IpIntelligence | None
) -> LoadedPolicy:
    """`policy check` and `edgeward check` say when a policy reads IP data
    the edge config does not provide: it reads as empty (never an error),
    which may not be what the policy's author expects."""
    provides = intel.provides if intel is not None else frozenset()
    missing: dict[str, set[str]] = {}
    for references in loaded.references.values():
        for ref in references:
            parts = ref.split(".")
            if parts[:2] == ["conn", "geo"]:
                kind = "geo"
            elif len(parts) >= 3 and parts[0] == "conn" and parts[1] in ("client_ip", "server_ip"):
                kind = parts[2]
            else:
                continue
            if kind in _IP_DATA and _IP_DATA[kind][0] not in provides:
                missing.setdefault(kind, set()).add(ref)
    if not missing:
        return loaded
    where = (
        "the edge config's ip_intelligence has no"
        if intel is not None
        else "no edge config here, so no ip_intelligence: it needs"
    )
    warnings = [
        Diagnostic(
            Severity.WARNING,
            f"{', '.join(sorted(refs))}: {where} {_IP_DATA[kind][1]}; the value reads as"
            " empty ('', [], false) for every connection",
            document.locate(()),
        )
        for kind, refs in sorted(missing.items())
    ]
    return replace(loaded, diagnostics=(*loaded.diagnostics, *warnings))


def _warn_unknown_secrets(
    document: SourceDocument, loaded: LoadedPolicy, read: set[tuple[str | None, str | None]]
) -> LoadedPolicy:
    names = ", ".join(sorted(f"{v or '<computed>'}/{n or '<computed>'}" for v, n in read))
    warning = Diagnostic(
        Severity.WARNING,
        f"secrets.get reads {names}: no secrets are known here (give the edge config's"
        " secrets with --secrets FILE); they are not checked, and read at run time they fail",
        document.locate(()),
    )
    return replace(loaded, diagnostics=(*loaded.diagnostics, warning))


class _PolicySource(Protocol):
    @property
    def document(self) -> Any: ...

    @property
    def events(self) -> Sequence[str] | None: ...


def _source_secrets(source: object) -> Mapping[str, Mapping[str, str]] | None:
    # `edgeward.config.PolicySource.secrets`: the edge config's `secrets:`.
    secrets: Mapping[str, Mapping[str, str]] | None = getattr(source, "secrets", None)
    return secrets


class PolicyCompiler:
    """The `edgeward.config.PolicyFactory` the edge uses: compiles each
    endpoint's policy with the edge-wide event sinks and body limit.

    Events go to `events` when given; else where the edge config's
    `events:` says (`PolicySource.events`); else to the targets named by
    ``EDGEWARD_POLICY_EVENTS`` (comma-separated), else to stdout.

    Every policy naming a target shares its sink, and so one file handle:
    a reload compiles against the sinks the running generation holds (no
    reopen), and a sink no generation holds any more is collected, which
    closes its file."""

    def __init__(
        self,
        *,
        events: EventSink | None = None,
        body_limit: int | None = None,
        clock: Callable[[], float] | None = None,
        secrets: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.events = events
        self.body_limit = body_limit
        self.clock = clock
        self.secrets = secrets
        self._sinks: weakref.WeakValueDictionary[str, EventSink] = weakref.WeakValueDictionary()
        self._identity = Runtimes()  # kept across reloads: memory sessions survive them

    def __call__(
        self, source: _PolicySource, ip_policies: Mapping[str, IpPolicyRules]
    ) -> CompiledPolicy | AuthHostHooks:
        settings: IdentitySettings | None = getattr(source, "identity", None)
        runtime = self._identity.get(settings) if settings is not None else None
        if getattr(source, "builtin", None) == "identity-auth-host":
            assert runtime is not None
            return AuthHostHooks(runtime)
        policy = compile_policy(
            source.document,
            ip_policies=ip_policies,
            events=self.events if self.events is not None else self._edge_sink(source.events),
            http_request=getattr(source, "http_request", None),
            body_limit=self.body_limit,
            clock=self.clock,
            secrets=self.secrets if self.secrets is not None else _source_secrets(source),
            identity=runtime,
            edge=True,
            ip_intelligence=getattr(source, "ip_intelligence", None),
            owasp_crs_rules_dir=getattr(source, "owasp_crs_rules_dir", None),
        )
        if runtime is not None:
            for client in runtime.clients.values():
                if client.discovery is not None:
                    probe(client.discovery)
        return policy

    def _edge_sink(self, targets: Sequence[str] | None) -> EventSink:
        """`sink(targets)`, and denies to the event bus whatever the targets."""
        lines = self.sink(targets)
        return BUS_SINK if isinstance(lines, NullSink) else fan_out([lines, BUS_SINK])

    def sink(self, targets: Sequence[str] | None) -> EventSink:
        """The sink for `targets` (None: ``EDGEWARD_POLICY_EVENTS``)."""
        if targets is None:
            spec = os.environ.get("EDGEWARD_POLICY_EVENTS", "stdout")
            targets = [t.strip() for t in spec.split(",") if t.strip()]
        sinks: list[EventSink] = []
        for target in targets:
            sink = self._sinks.get(target)
            if sink is None:
                sink = self._sinks[target] = open_event_sink(target)
            sinks.append(sink)
        return fan_out(sinks)


compile_hooks = PolicyCompiler()
"""The `edgeward.config.PolicyFactory` `edgeward serve` uses."""
