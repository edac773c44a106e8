"""The compiled ACL against a deliberately naive oracle: each rule string is
read again here with plain string operations and `fnmatch`, tried one by one
in order; the compiled `Acl` (dict lookups, a walk over the host's dots)
must allow exactly what the oracle allows and name the same first rule.

Hosts and rules are drawn from one small vocabulary of labels, in random
case with stray trailing dots, so that matches, near misses (apex, deeper
wildcards, a suffix that is not a label boundary) and collisions are common.
"""

from __future__ import annotations

import fnmatch

from hypothesis import assume, given
from hypothesis import strategies as st

from edgeward.authtokens.acl import (
    Acl,
    AclError,
    AddressBind,
    BindTarget,
    BindTargetError,
    HostBind,
    LabelBind,
)

LABELS = ["a", "b", "alice", "bob", "dev", "example", "com", "internal", "xn--bcher-kva", "a-1"]
PORTS = [22, 80, 20002]
LABEL_PARTS = ["app", "web", "App", "x", "v1.2", "team/a"]


def _case(draw: st.DrawFn, text: str) -> str:
    """`text` with a random subset of its letters upper-cased (one draw)."""
    mask = draw(st.integers(0, 2 ** len(text) - 1)) if draw(st.booleans()) else 0
    return "".join(c.upper() if mask >> i & 1 else c for i, c in enumerate(text))


@st.composite
def hostnames(draw: st.DrawFn, wildcard: bool = True) -> str:
    labels = draw(st.lists(st.sampled_from(LABELS), min_size=1, max_size=5))
    name = ".".join(labels)
    if wildcard and draw(st.booleans()):
        name = "*." + name
    return _case(draw, name) + draw(st.sampled_from(["", "", "", "."]))


@st.composite
def rules(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["host", "host", "host", "address", "label", "star"]))
    if kind == "host":
        return "bind:" + draw(hostnames())
    if kind == "address":
        return f"bind:{draw(hostnames(wildcard=False))}:{draw(st.sampled_from(PORTS))}"
    if kind == "label":
        parts = [*LABEL_PARTS, "*"]
        return f"bind:{draw(st.sampled_from(parts))}={draw(st.sampled_from(parts))}"
    return draw(st.sampled_from(["*", "bind:*"]))


@st.composite
def targets(draw: st.DrawFn) -> BindTarget:
    kind = draw(st.sampled_from(["host", "host", "address", "label"]))
    if kind == "host":
        return HostBind(draw(hostnames()))
    if kind == "address":
        port = draw(st.sampled_from([*PORTS, None]))
        return AddressBind(draw(hostnames(wildcard=False)), port)
    return LabelBind(draw(st.sampled_from(LABEL_PARTS)), draw(st.sampled_from(LABEL_PARTS)))


def _host(text: str) -> str:
    return text.lower().rstrip(".")


def oracle_matches(rule: str, target: BindTarget) -> bool:
    """One rule, read the obvious way."""
    if rule in ("*", "bind:*"):
        return True
    body = rule.removeprefix("bind:")
    if "=" in body:
        key, value = body.split("=")
        return (
            isinstance(target, LabelBind)
            and key in ("*", target.key)
            and value in ("*", target.value)
        )
    if ":" in body:
        host, port = body.rsplit(":", 1)
        return (
            isinstance(target, AddressBind)
            and target.port == int(port)
            and _host(host) == _host(target.host)
        )
    # fnmatch's "*" spans dots: "*.x.com" matches "a.b.x.com" and "*.x.com",
    # never "x.com" (the "." is literal); valid hostnames hold no [ ] ?.
    return isinstance(target, HostBind) and fnmatch.fnmatchcase(_host(target.hostname), _host(body))


def oracle_first(rule_list: list[str], target: BindTarget) -> int | None:
    if not rule_list:
        return -1  # no rules: everything allowed, no rule named
    return next((i for i, r in enumerate(rule_list) if oracle_matches(r, target)), None)


@given(st.lists(rules(), max_size=6), targets())
def test_compiled_acl_agrees_with_the_oracle(rule_list: list[str], target: BindTarget) -> None:
    decision = Acl.parse(rule_list).allows(target)
    expected = oracle_first(rule_list, target)
    assert decision.allowed == (expected is not None)
    if expected is None:
        assert decision.rule is None and decision.code is not None
    elif expected == -1:
        assert decision.rule is None
    else:
        assert decision.rule is not None and decision.rule.index == expected


@given(st.lists(rules(), max_size=6), targets())
def test_canonical_texts_mean_the_same(rule_list: list[str], target: BindTarget) -> None:
    acl = Acl.parse(rule_list)
    again = Acl.parse(list(acl.texts))
    assert again.texts == acl.texts
    assert again.allows(target) == acl.allows(target)


@given(st.lists(rules(), min_size=1, max_size=6), hostnames())
def test_host_case_and_trailing_dot_do_not_matter(rule_list: list[str], host: str) -> None:
    acl = Acl.parse(rule_list)
    variants = {host, host.upper(), host.lower(), host.rstrip(".") + "."}
    assert len({acl.allows(HostBind(v)).allowed for v in variants}) == 1


@given(st.lists(rules(), max_size=6), st.lists(rules(), max_size=6), targets())
def test_adding_rules_never_takes_a_permission_away(
    first: list[str], more: list[str], target: BindTarget
) -> None:
    assume(first)  # [] is unrestricted: adding rules to it restricts, by design
    if Acl.parse(first).allows(target).allowed:
        assert Acl.parse(first + more).allows(target).allowed


@given(st.text(max_size=40))
def test_any_text_parses_or_fails_with_a_located_acl_error(text: str) -> None:
    try:
        Acl.parse(["bind:ok.example", text])
    except AclError as exc:
        (problem,) = exc.problems
        assert problem.index == 1 and 1 <= problem.column <= max(len(text), 1) + 1
        return


@given(st.text(alphabet="ab.*-_:=9 ", max_size=30))
def test_valid_looking_noise_parses_or_fails_cleanly(body: str) -> None:
    try:
        acl = Acl.parse([f"bind:{body}"])
    except AclError:
        return
    for target in (HostBind("a.b"), AddressBind("a.b", 9), LabelBind("a", "b")):
        acl.allows(target)  # whatever it decides, it decides without raising


@given(st.text(max_size=30))
def test_bind_targets_are_valid_or_refused(text: str) -> None:
    try:
        target = HostBind(text)
    except BindTargetError:
        return
    assert target.hostname == target.hostname.lower() and not target.hostname.endswith(".")
