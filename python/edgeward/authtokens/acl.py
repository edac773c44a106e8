"""Authtoken ACLs: the `bind:` rule grammar of the ngrok credential API
(traffic-policy-reference.md §6.2), compiled once, checked at bind time.

    acl = Acl.parse(["bind:*.alice.dev.example.com", "bind:alice.internal"])
    acl.allows(HostBind("alice.internal"))   # Decision(allowed=True, rule=<rule 2>, ...)

Grammar (the reference's, with the decisions where it is silent):

    rule    := "*" | "bind:" target
    target  := "*"                   every bind, like "*" and like no rule at all
             | hostname              exactly that host (http, https, tls endpoints)
             | "*." hostname         any host under the suffix, at any depth, and the
                                     wildcard itself ("*.x.com" allows "a.b.x.com",
                                     "*.x.com", "*.a.x.com"); never the apex "x.com"
             | hostname ":" port     exactly that TCP address (tcp endpoints)
             | key "=" value         a label; either side may be "*"

Hostnames compare case-insensitively and lose trailing dots, like the edge's
router and `edge.yml`; they are ASCII (IDNA names in their `xn--` form).
Label keys and values compare case-sensitively. A list of rules ORs them; an
empty list restricts nothing (the API's "no ACL"). A random TCP address is
allowed only by an unrestricted ACL (ngrok's ERR_NGROK_356).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from edgeward.errors import EdgewardError

RuleKind = Literal["all", "host", "suffix", "address", "label"]

PREFIX = "bind:"
# ngrok's codes: a malformed rule; a rule without "bind:"; refused binds by kind.
ERR_INVALID_RULE = 600
ERR_NOT_BIND = 10007
ERR_HOST = 316
ERR_ADDRESS = 308
ERR_RANDOM_ADDRESS = 356
ERR_LABEL = 399

MAX_HOSTNAME = 253
MAX_LABEL_PART = 255
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_LABEL_PART = re.compile(r"[A-Za-z0-9._/-]+\Z")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_WILDCARD_RULE = "'*' stands only as a whole leftmost label, as in '*.example.com'"


class BindTargetError(EdgewardError):
    """What an agent asked to bind is not a hostname, address or label."""


@dataclass(frozen=True, slots=True)
class AclProblem:
    """One rule that does not parse: which one (0-based `index` in the list
    given), its text, and the 1-based column in that text."""

    index: int
    rule: str
    column: int
    message: str
    code: int = ERR_INVALID_RULE

    def describe(self, source: str) -> str:
        return f"{source} #{self.index + 1} {self.rule!r}, column {self.column}: {self.message}"


class AclError(EdgewardError):
    """Every malformed rule of a list, raised together. `source` names where
    the list came from (`--acl` on the command line, `acl` in an API body)."""

    def __init__(self, problems: Sequence[AclProblem], source: str = "acl") -> None:
        self.problems = tuple(problems)
        self.source = source
        super().__init__("; ".join(p.describe(source) for p in self.problems))


# --- what an agent asks to bind -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostBind:
    """An http, https or tls endpoint's hostname (ports are not part of it);
    `*.x` binds a wildcard endpoint. Normalised: lower case, no trailing dot."""

    hostname: str

    def __post_init__(self) -> None:
        name = _lower(self.hostname).rstrip(".")
        problem = _hostname_problem(name, wildcard=True)
        if problem is not None:
            raise BindTargetError(f"not a hostname: {self.hostname!r}: {problem[1]}")
        object.__setattr__(self, "hostname", name)

    def __str__(self) -> str:
        return self.hostname


@dataclass(frozen=True, slots=True)
class AddressBind:
    """A tcp endpoint: `host:port`, or any free port on `host` (`port=None`)."""

    host: str
    port: int | None = None

    def __post_init__(self) -> None:
        name = _lower(self.host).rstrip(".")
        problem = _hostname_problem(name, wildcard=False)
        if problem is not None:
            raise BindTargetError(f"not a host: {self.host!r}: {problem[1]}")
        if self.port is not None and not 0 < self.port < 65536:
            raise BindTargetError(f"not a TCP port: {self.port}")
        object.__setattr__(self, "host", name)

    def __str__(self) -> str:
        if self.port is None:
            return f"a random TCP address on {self.host}"
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class LabelBind:
    """One label of a labeled tunnel; a bind with several is allowed when
    each of them is."""

    key: str
    value: str

    def __post_init__(self) -> None:
        for part in (self.key, self.value):
            if not _LABEL_PART.match(part) or len(part) > MAX_LABEL_PART:
                raise BindTargetError(f"not a label: {self.key}={self.value}")

    def __str__(self) -> str:
        return f"label {self.key}={self.value}"


BindTarget = HostBind | AddressBind | LabelBind


# --- rules and the compiled ACL --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AclRule:
    """One parsed rule. `text` is its canonical form (what is stored and
    shown); `index` its 0-based position in its ACL."""

    text: str
    kind: RuleKind
    index: int
    host: str = ""  # host, suffix (with its leading dot: ".example.com") or address host
    port: int = 0
    key: str = ""
    value: str = ""

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one bind: the rule that allowed it, or, when refused,
    the whole rule set and ngrok's error code for that kind of target."""

    allowed: bool
    target: BindTarget
    rule: AclRule | None  # None when allowed by an empty ACL, or refused
    rules: tuple[AclRule, ...]
    code: int | None = None

    def __str__(self) -> str:
        if self.allowed:
            if self.rule is None:
                return f"{self.target}: allowed (the authtoken has no ACL rules)"
            return f"{self.target}: allowed by rule #{self.rule.index + 1} {self.rule.text!r}"
        rules = ", ".join(r.text for r in self.rules)
        if self.code == ERR_RANDOM_ADDRESS:
            return (
                f"{self.target}: refused: the authtoken's ACL ({rules}) does not allow"
                " random TCP addresses; bind an address a 'bind:host:port' rule names"
            )
        return f"{self.target}: refused: not allowed by the authtoken's ACL ({rules})"


class Acl:
    """A compiled, immutable rule list. Parse with `Acl.parse`.

    Each lookup maps a normalised key to the lowest index of a rule with that
    key, so a decision names the first rule (in the list's order) that matches.
    """

    __slots__ = ("_addresses", "_everything", "_hosts", "_labels", "_suffixes", "rules")

    def __init__(self, rules: Iterable[AclRule] = ()) -> None:
        self.rules = tuple(rules)
        self._everything: int | None = None
        self._hosts: dict[str, int] = {}
        self._suffixes: dict[str, int] = {}  # ".example.com" -> index
        self._addresses: dict[tuple[str, int], int] = {}
        self._labels: dict[tuple[str, str], int] = {}  # "*" stays literal
        for at, rule in reversed(list(enumerate(self.rules))):  # the first of equal keys wins
            if rule.kind == "all":
                self._everything = at
            elif rule.kind == "host":
                self._hosts[rule.host] = at
            elif rule.kind == "suffix":
                self._suffixes[rule.host] = at
            elif rule.kind == "address":
                self._addresses[(rule.host, rule.port)] = at
            else:
                self._labels[(rule.key, rule.value)] = at

    @classmethod
    def parse(cls, texts: Sequence[str], source: str = "acl") -> Acl:
        """Parse every rule; raise one `AclError` naming each bad one."""
        if isinstance(texts, str):
            raise TypeError("Acl.parse takes a list of rules, not one string")
        rules: list[AclRule] = []
        problems: list[AclProblem] = []
        for i, text in enumerate(texts):
            result = parse_rule(text, i)
            if isinstance(result, AclProblem):
                problems.append(result)
            else:
                rules.append(result)
        if problems:
            raise AclError(problems, source)
        return cls(rules)

    @property
    def unrestricted(self) -> bool:
        return not self.rules or self._everything is not None

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(r.text for r in self.rules)

    def allows(self, target: BindTarget) -> Decision:
        if not self.rules:
            return Decision(True, target, None, ())
        found = [self._everything]
        code: int
        if isinstance(target, HostBind):
            code = ERR_HOST
            name = target.hostname
            found.append(self._hosts.get(name))
            dot = name.find(".")
            while dot != -1:
                found.append(self._suffixes.get(name[dot:]))
                dot = name.find(".", dot + 1)
        elif isinstance(target, AddressBind):
            if target.port is None:
                code = ERR_RANDOM_ADDRESS
            else:
                code = ERR_ADDRESS
                found.append(self._addresses.get((target.host, target.port)))
        else:
            code = ERR_LABEL
            labels = self._labels
            key, value = target.key, target.value
            for pair in ((key, value), (key, "*"), ("*", value), ("*", "*")):
                found.append(labels.get(pair))
        hits = [i for i in found if i is not None]
        if hits:
            return Decision(True, target, self.rules[min(hits)], self.rules)
        return Decision(False, target, None, self.rules, code)

    def beyond(self, granted: Acl) -> tuple[AclRule, ...]:
        """The rules of this ACL that allow something `granted` does not
        (empty: this ACL is within the grant). A developer of the admin API
        may give an authtoken only rules within the ACL an admin granted.
        An unrestricted ACL is within an unrestricted grant only."""
        if granted.unrestricted:
            return ()
        if not self.rules:
            return (AclRule("*", "all", 0),)
        return tuple(rule for rule in self.rules if not _within(rule, granted))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Acl) and self.texts == other.texts

    def __hash__(self) -> int:
        return hash(self.texts)

    def __repr__(self) -> str:
        return f"Acl({list(self.texts)!r})"

    def __str__(self) -> str:
        return ", ".join(self.texts) if self.rules else "(no rules: unrestricted)"


def _within(rule: AclRule, granted: Acl) -> bool:
    """Whether everything `rule` allows, `granted` allows (granted is restricted)."""
    if rule.kind == "all":
        return False
    if rule.kind == "host":
        return granted.allows(HostBind(rule.host)).allowed
    if rule.kind == "suffix":  # "*.x" allows "*.x" itself and all below it
        return granted.allows(HostBind("*" + rule.host)).allowed
    if rule.kind == "address":
        return granted.allows(AddressBind(rule.host, rule.port)).allowed
    labels = {(r.key, r.value) for r in granted.rules if r.kind == "label"}
    keys = (rule.key, "*") if rule.key != "*" else ("*",)
    values = (rule.value, "*") if rule.value != "*" else ("*",)
    return any((k, v) in labels for k in keys for v in values)


# --- parsing -----------------------------------------------------------------------------


def parse_rule(text: str, index: int = 0) -> AclRule | AclProblem:
    """One rule, or the problem with it (returned, so a list reports all)."""
    if text == "*":
        return AclRule("*", "all", index)
    if not text.startswith(PREFIX):
        message = "an ACL rule must be '*' or start with 'bind:' (lower case)"
        return AclProblem(index, text, 1, message, ERR_NOT_BIND)
    body, at = text[len(PREFIX) :], len(PREFIX)
    result: AclRule | tuple[int, str]
    if body == "*":
        return AclRule("bind:*", "all", index)
    if not body:
        result = 0, "'bind:' needs a hostname, host:port, key=value or '*'"
    elif "=" in body:
        result = _label_rule(text, body, index)
    elif ":" in body:
        result = _address_rule(body, index)
    else:
        result = _host_rule(body, index)
    if isinstance(result, AclRule):
        return result
    offset, message = result
    return AclProblem(index, text, at + offset + 1, message)


def _host_rule(body: str, index: int) -> AclRule | tuple[int, str]:
    name = _lower(body).rstrip(".")
    found = _hostname_problem(name, wildcard=True)
    if found is not None:
        return found
    if name.startswith("*."):
        return AclRule(f"bind:{name}", "suffix", index, host=name[1:])
    return AclRule(f"bind:{name}", "host", index, host=name)


def _label_rule(text: str, body: str, index: int) -> AclRule | tuple[int, str]:
    key, _, value = body.partition("=")
    for part, offset in ((key, 0), (value, len(key) + 1)):
        if not part:
            return offset, "a label rule is key=value, neither side empty"
        if part == "*":
            continue
        if len(part) > MAX_LABEL_PART:
            return offset, f"longer than {MAX_LABEL_PART} characters"
        bad = next((i for i, c in enumerate(part) if not _LABEL_PART.match(c)), None)
        if bad is not None:
            if part[bad] == "*":
                return offset + bad, "'*' stands only as a whole key or value"
            return offset + bad, (
                f"{part[bad]!r} is not allowed in a label (letters, digits, '.', '_', '/', '-')"
            )
    return AclRule(text, "label", index, key=key, value=value)


def _address_rule(body: str, index: int) -> AclRule | tuple[int, str]:
    if body.startswith("["):
        return 0, "IPv6 addresses are not supported in bind rules"
    host, _, port = body.rpartition(":")
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        return len(host) + 1, f"the port must be a number from 1 to 65535, not {port!r}"
    name = _lower(host).rstrip(".")
    found = _hostname_problem(name, wildcard=False)
    if found is not None:
        if "*" in host:
            return found[0], "a TCP address rule names one host: no wildcard"
        return found
    return AclRule(f"bind:{name}:{int(port)}", "address", index, host=name, port=int(port))


def _lower(text: str) -> str:
    """ASCII lower case only: keeps offsets, and non-ASCII stays visible."""
    return text.translate(_ASCII_LOWER)


def _hostname_problem(name: str, *, wildcard: bool) -> tuple[int, str] | None:
    """None when `name` (lower-cased, trailing dots removed) is a DNS
    hostname, or with `wildcard` a `*.`-wildcard; else (offset, why)."""
    if not name:
        return 0, "empty hostname"
    if len(name) > MAX_HOSTNAME:
        return MAX_HOSTNAME, f"a hostname has at most {MAX_HOSTNAME} characters"
    labels = name.split(".")
    offset = 0
    for i, label in enumerate(labels):
        if label == "*" and i == 0 and wildcard:
            if len(labels) == 1:
                return 0, "'*.' needs a suffix, as in '*.example.com'"
        elif "*" in label:
            return offset + label.index("*"), _WILDCARD_RULE if wildcard else "no wildcard here"
        elif not label:
            return offset, "empty label (two dots in a row, or a leading dot)"
        elif len(label) > 63:
            return offset, "a label has at most 63 characters"
        elif not _DNS_LABEL.match(label):
            bad = next(
                (
                    j
                    for j, c in enumerate(label)
                    if not (c.isascii() and (c.isalnum() or c == "-"))
                    or (c == "-" and j in (0, len(label) - 1))
                ),
                0,
            )
            return offset + bad, (
                f"{label[bad]!r} is not allowed in a hostname"
                " (ASCII letters, digits, '-' inside a label; IDNA names as xn--)"
            )
        offset += len(label) + 1
    return None


__all__ = [
    "Acl",
    "AclError",
    "AclProblem",
    "AclRule",
    "AddressBind",
    "BindTarget",
    "BindTargetError",
    "Decision",
    "HostBind",
    "LabelBind",
    "parse_rule",
]
