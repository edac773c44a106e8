"""IP policies and IP restrictions as decisions.

An IP restriction attaches IP policies to one entry point: `dashboard` (the
console's pages), `api` (the admin API), `agent` (the agent ingress),
`endpoints` (public traffic to every endpoint). The rules of all its
policies are unioned, and an address is allowed when it matches an `allow`
rule and no `deny` rule, whatever the prefix lengths (ngrok's semantics,
traffic-policy-reference.md 5.2; `edgeward.native.IpPolicy` decides). An
entry point without a restriction is open; a restriction that is not
`enforced` only warns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from edgeward import native
from edgeward.errors import EdgewardError
from edgeward.store.control_rows import IpPolicyRuleRow, IpRestrictionRow

RESTRICTION_TYPES: Final = ("dashboard", "api", "agent", "endpoints")
ACTIONS: Final = ("allow", "deny")


class RuleError(EdgewardError):
    """A rule's CIDR or action is not valid (the message says why)."""


def check_cidr(text: str) -> str:
    """`text` as a rule's CIDR: a network with its mask (a bare address is
    refused, as ngrok does: write /32 or /128) and no host bits set."""
    if "/" not in text:
        raise RuleError(f"{text!r} has no mask: write {text}/32 (IPv4) or {text}/128 (IPv6)")
    try:
        native.IpPolicy([text], [])
    except ValueError as exc:
        reason = str(exc).partition(": ")[2] or str(exc)  # without "allow[0]: "
        raise RuleError(f"not a valid CIDR: {reason}") from None
    return text


@dataclass(frozen=True, slots=True)
class Restriction:
    type: str
    id: str
    enforced: bool
    decide: native.IpPolicy
    ip_policy_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Restrictions:
    """The restrictions in force, by type (immutable: swapped whole)."""

    by_type: Mapping[str, Restriction] = field(default_factory=dict)

    @classmethod
    def build(
        cls, restrictions: Iterable[IpRestrictionRow], rules: Iterable[IpPolicyRuleRow]
    ) -> Restrictions:
        by_policy: dict[str, list[IpPolicyRuleRow]] = {}
        for rule in rules:
            by_policy.setdefault(rule.ip_policy_id, []).append(rule)
        built = {}
        for row in restrictions:
            chosen = [r for p in row.ip_policy_ids for r in by_policy.get(p, ())]
            allow = [r.cidr for r in chosen if r.action == "allow"]
            deny = [r.cidr for r in chosen if r.action == "deny"]
            built[row.type] = Restriction(
                row.type, row.id, row.enforced, native.IpPolicy(allow, deny), row.ip_policy_ids
            )
        return cls(built)

    def verdict(self, type: str, address: str) -> tuple[bool, Restriction | None]:
        """(allowed, the restriction that decided); an address that cannot
        be parsed is refused by a restriction, allowed without one."""
        restriction = self.by_type.get(type)
        if restriction is None:
            return True, None
        try:
            return bool(restriction.decide.decide(address)), restriction
        except ValueError:
            return False, restriction

    def allows(self, type: str, address: str) -> bool:
        """Whether to let `address` in at `type` (a restriction that is not
        enforced lets everyone in: the caller warns)."""
        allowed, restriction = self.verdict(type, address)
        return allowed or (restriction is not None and not restriction.enforced)


__all__ = ["ACTIONS", "RESTRICTION_TYPES", "Restriction", "Restrictions", "RuleError", "check_cidr"]
