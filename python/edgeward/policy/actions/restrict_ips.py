"""`restrict-ips`: allow or deny by the client's layer-4 address.

An address is allowed only if it matches an allowed CIDR and no denied one
(deny wins whatever the prefix lengths). The lists are the action's `allow`
/ `deny` plus the rules of the edge config's named IP policies listed in
`ip_policies`. Forwarded headers are never consulted. Denied in
`on_tcp_connect`: the connection is closed before any byte is read; in the
HTTP phases: 403. With `enforce: false` the verdict is only recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, Self

from edgeward import native
from edgeward.policy.actions._http import error_decision
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    CompileScope,
    ConfigReader,
    Decision,
    Phase,
)
from edgeward.policy.config import constant
from edgeward.policy.errors import ErrorCode

_DENY_ONLY = (
    "restrict-ips with only denied CIDRs would block every address; add '0.0.0.0/0' and "
    "'::/0' to allow to let everything else in"
)


class Matcher:
    """The compiled lists: the verdict from the native `IpPolicy`, and the
    matched CIDR (for `actions.ngrok.restrict_ips.matched_cidr`) from two
    longest-prefix tables, consulted only when a rule reads it."""

    __slots__ = ("_allow", "_deny", "policy")

    def __init__(self, allow: Sequence[str], deny: Sequence[str]) -> None:
        self.policy = native.IpPolicy(allow, deny)  # ValueError names the bad entry
        self._allow = native.IpTable((cidr, cidr) for cidr in allow)
        self._deny = native.IpTable((cidr, cidr) for cidr in deny)

    def matched_cidr(self, ip: str, allowed: bool) -> str:
        table = self._allow if allowed else self._deny
        return table.lookup(ip) or ""


@lru_cache(maxsize=64)
def _matcher(allow: tuple[str, ...], deny: tuple[str, ...]) -> Matcher:
    return Matcher(allow, deny)


class RestrictIps(Action):
    type = "restrict-ips"
    phases = frozenset(Phase)

    def __init__(
        self,
        *,
        enforce: bool,
        static: Matcher | None,
        allow: Sequence[native.Template],
        deny: Sequence[native.Template],
        extra_allow: tuple[str, ...],
        extra_deny: tuple[str, ...],
    ) -> None:
        self.enforce = enforce
        self.static = static  # all lists known at load time
        self.allow = tuple(allow)
        self.deny = tuple(deny)
        self.extra_allow = extra_allow  # from named IP policies
        self.extra_deny = extra_deny

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        enforce = config.boolean("enforce", default=True)
        allow = config.template_list("allow") or []
        deny = config.template_list("deny") or []
        refs = config.string_list("ip_policies") or []
        extra_allow: list[str] = []
        extra_deny: list[str] = []
        for i, ref in enumerate(refs):
            if scope.ip_policies is None:
                config.warn(
                    "ip_policies", f"IP policy {ref!r} is not checked: no edge config given"
                )
                extra_allow.append("0.0.0.0/0")  # only reached by `policy check` alone
                continue
            named = scope.ip_policies.get(ref)
            if named is None:
                known = ", ".join(sorted(scope.ip_policies)) or "none"
                config.fail(
                    "ip_policies", f"ip_policies[{i}]: no IP policy named {ref!r} (known: {known})"
                )
            extra_allow += (str(c) for c in named.allow)
            extra_deny += (str(c) for c in named.deny)
        if not (allow or deny or refs):
            config.fail(None, "restrict-ips needs at least one of allow, deny, ip_policies")
        _check_constants(config, allow, "allow")
        _check_constants(config, deny, "deny")
        static = None
        if all(t.is_constant for t in (*allow, *deny)):
            all_allow = [constant(t) for t in allow] + extra_allow
            all_deny = [constant(t) for t in deny] + extra_deny
            if not all_allow and all_deny:
                config.fail("deny", _DENY_ONLY)
            static = Matcher(all_allow, all_deny)
        assert enforce is not None
        return cls(
            enforce=enforce,
            static=static,
            allow=allow,
            deny=deny,
            extra_allow=tuple(extra_allow),
            extra_deny=tuple(extra_deny),
        )

    def matcher(self, ctx: ActionContext) -> Matcher:
        if self.static is not None:
            return self.static
        allow = (*(ctx.render(t) for t in self.allow), *self.extra_allow)
        deny = (*(ctx.render(t) for t in self.deny), *self.extra_deny)
        return _matcher(_split(allow), _split(deny))

    def apply(self, ctx: ActionContext) -> Decision | None:
        ip = ctx.state.conn.client_ip  # layer 4, never a forwarded header
        matcher = self.static or self.matcher(ctx)
        try:
            allowed = matcher.policy.decide(ip)
        except ValueError:
            allowed = False
        if ctx.records:
            ctx.record("restrict_ips", IpVerdict(matcher, ip, allowed))
        if allowed or not self.enforce:
            return None
        message = _denied(ip)
        if ctx.phase is Phase.TCP_CONNECT:
            return Decision.close(message, verdict="deny")
        return error_decision(
            ctx, 403, ErrorCode.IP_DENIED, "Forbidden: blocked by IP policy", reason=message
        )


def _denied(ip: str) -> str:
    return f"IP {ip} is not allowed by the policy"


class IpVerdict(Mapping[str, Any]):
    """`actions.ngrok.restrict_ips`: `action`, `matched_cidr` (looked up
    only when read) and, when denied, `error.code` / `error.message`."""

    __slots__ = ("_cidr", "_ip", "_matcher", "allowed")

    def __init__(self, matcher: Matcher, ip: str, allowed: bool) -> None:
        self._matcher = matcher
        self._ip = ip
        self.allowed = allowed
        self._cidr: str | None = None

    def __getitem__(self, key: str) -> Any:
        if key == "action":
            return "allow" if self.allowed else "deny"
        if key == "matched_cidr":
            if self._cidr is None:
                self._cidr = self._matcher.matched_cidr(self._ip, self.allowed)
            return self._cidr
        if key == "error" and not self.allowed:
            return {"code": ErrorCode.IP_DENIED.value, "message": _denied(self._ip)}
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        yield from ("action", "matched_cidr")
        if not self.allowed:
            yield "error"

    def __len__(self) -> int:
        return 2 if self.allowed else 3


def _split(values: Iterable[str]) -> tuple[str, ...]:
    """An interpolated entry may hold several CIDRs separated by commas."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _check_constants(config: ConfigReader, templates: Sequence[native.Template], key: str) -> None:
    constants = [constant(t) for t in templates if t.is_constant]
    try:
        native.IpPolicy(constants if key == "allow" else (), constants if key == "deny" else ())
    except ValueError as exc:
        config.fail(key, str(exc))
