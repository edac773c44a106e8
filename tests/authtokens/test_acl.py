"""The `bind:` grammar of traffic-policy-reference.md §6.2, case by case:
the reference's own examples, then each decision where it is silent."""

from __future__ import annotations

import pytest

from edgeward.authtokens.acl import (
    ERR_ADDRESS,
    ERR_HOST,
    ERR_INVALID_RULE,
    ERR_LABEL,
    ERR_NOT_BIND,
    ERR_RANDOM_ADDRESS,
    Acl,
    AclError,
    AddressBind,
    BindTarget,
    BindTargetError,
    HostBind,
    LabelBind,
)


def allowed(rules: list[str], target: BindTarget) -> bool:
    return Acl.parse(rules).allows(target).allowed


# --- the reference's examples ----------------------------------------------------------


def test_exact_host() -> None:
    assert allowed(["bind:example.ngrok.io"], HostBind("example.ngrok.io"))
    assert not allowed(["bind:example.ngrok.io"], HostBind("other.ngrok.io"))
    assert not allowed(["bind:example.ngrok.io"], HostBind("a.example.ngrok.io"))


@pytest.mark.parametrize("host", ["x.example.com", "y.example.com", "*.example.com"])
def test_wildcard_allows_the_reference_list(host: str) -> None:
    # "bind:*.example.com which will allow x.example.com, y.example.com, *.example.com"
    assert allowed(["bind:*.example.com"], HostBind(host))


def test_label_wildcards() -> None:
    # "bind:*=example which will allow x=example, y=example"
    assert allowed(["bind:*=example"], LabelBind("x", "example"))
    assert allowed(["bind:*=example"], LabelBind("y", "example"))
    assert not allowed(["bind:*=example"], LabelBind("x", "other"))
    assert allowed(["bind:app=*"], LabelBind("app", "anything"))
    assert not allowed(["bind:app=*"], LabelBind("other", "anything"))
    assert allowed(["bind:foo=bar"], LabelBind("foo", "bar"))
    assert not allowed(["bind:foo=bar"], LabelBind("foo", "baz"))
    assert allowed(["bind:*=*"], LabelBind("k", "v"))


@pytest.mark.parametrize("rule", ["*", "bind:*"])
@pytest.mark.parametrize(
    "target",
    [
        HostBind("anything.example.com"),
        HostBind("*.example.com"),
        HostBind("alice.internal"),
        AddressBind("tcp.example.com", 20002),
        AddressBind("tcp.example.com", None),
        LabelBind("k", "v"),
    ],
)
def test_star_allows_everything(rule: str, target: BindTarget) -> None:
    acl = Acl.parse(["bind:nothing.example", rule])
    decision = acl.allows(target)
    assert decision.allowed and decision.rule is not None and decision.rule.index == 1
    assert acl.unrestricted


def test_tcp_address() -> None:
    acl = Acl.parse(["bind:1.tcp.ngrok.io:20002"])
    assert acl.allows(AddressBind("1.tcp.ngrok.io", 20002)).allowed
    assert not acl.allows(AddressBind("1.tcp.ngrok.io", 20003)).allowed
    assert not acl.allows(AddressBind("2.tcp.ngrok.io", 20002)).allowed


def test_internal_hosts() -> None:
    acl = Acl.parse(["bind:alias1.internal", "bind:*.gateway1.internal"])
    assert acl.allows(HostBind("alias1.internal")).allowed
    assert acl.allows(HostBind("x.gateway1.internal")).allowed
    assert not acl.allows(HostBind("gateway1.internal")).allowed
    assert not acl.allows(HostBind("alias2.internal")).allowed
    # a public wildcard does not reach internal names, nor the reverse
    assert not allowed(["bind:*.example.com"], HostBind("alice.internal"))
    assert not allowed(["bind:*.internal"], HostBind("alice.example.com"))
    assert allowed(["bind:*.internal"], HostBind("alice.internal"))


def test_rules_are_ored_and_the_first_match_is_named() -> None:
    acl = Acl.parse(["bind:*.dev.example.com", "bind:alice.internal", "bind:a.dev.example.com"])
    decision = acl.allows(HostBind("a.dev.example.com"))
    assert decision.allowed and decision.rule is not None
    assert decision.rule.text == "bind:*.dev.example.com" and decision.rule.index == 0
    decision = acl.allows(HostBind("alice.internal"))
    assert decision.rule is not None and decision.rule.index == 1
    assert "rule #2 'bind:alice.internal'" in str(decision)


def test_no_rules_means_unrestricted() -> None:
    acl = Acl.parse([])
    decision = acl.allows(AddressBind("tcp.example.com"))
    assert acl.unrestricted and decision.allowed and decision.rule is None
    assert "no ACL rules" in str(decision)


# --- decisions where the reference is silent --------------------------------------------


def test_wildcard_never_matches_the_apex() -> None:
    assert not allowed(["bind:*.example.com"], HostBind("example.com"))


def test_wildcard_matches_any_depth() -> None:
    acl = Acl.parse(["bind:*.alice.dev.example.com"])
    assert acl.allows(HostBind("a.b.c.alice.dev.example.com")).allowed
    assert acl.allows(HostBind("*.x.alice.dev.example.com")).allowed  # a narrower wildcard
    assert not acl.allows(HostBind("*.dev.example.com")).allowed  # a broader one
    assert not acl.allows(HostBind("xalice.dev.example.com")).allowed  # a suffix, not a label


def test_hostnames_are_case_insensitive_and_lose_trailing_dots() -> None:
    acl = Acl.parse(["bind:*.Alice.DEV.example.com.", "bind:Bob.Internal"])
    assert acl.texts == ("bind:*.alice.dev.example.com", "bind:bob.internal")
    assert acl.allows(HostBind("WWW.ALICE.dev.Example.COM")).allowed
    assert acl.allows(HostBind("bob.internal.")).allowed
    assert HostBind("Bob.Internal.").hostname == "bob.internal"


def test_labels_are_case_sensitive() -> None:
    assert not allowed(["bind:app=Web"], LabelBind("app", "web"))
    assert not allowed(["bind:App=web"], LabelBind("app", "web"))


def test_host_rules_do_not_cover_tcp_addresses_and_address_rules_not_hosts() -> None:
    assert not allowed(["bind:tcp.example.com"], AddressBind("tcp.example.com", 22))
    assert not allowed(["bind:*.example.com"], AddressBind("tcp.example.com", 22))
    assert not allowed(["bind:tcp.example.com:443"], HostBind("tcp.example.com"))


def test_a_random_tcp_address_needs_an_unrestricted_acl() -> None:
    acl = Acl.parse(["bind:tcp.example.com:22", "bind:*.example.com"])
    decision = acl.allows(AddressBind("tcp.example.com", None))
    assert not decision.allowed and decision.code == ERR_RANDOM_ADDRESS
    assert "random TCP" in str(decision)


def test_refusals_name_the_rule_set_and_the_error_code() -> None:
    acl = Acl.parse(["bind:alice.internal", "bind:*.alice.dev.example.com"])
    decision = acl.allows(HostBind("bob.internal"))
    assert not decision.allowed and decision.rule is None
    assert decision.rules == acl.rules and decision.code == ERR_HOST
    assert str(decision) == (
        "bob.internal: refused: not allowed by the authtoken's ACL"
        " (bind:alice.internal, bind:*.alice.dev.example.com)"
    )
    assert acl.allows(AddressBind("a.b", 1)).code == ERR_ADDRESS
    assert acl.allows(LabelBind("a", "b")).code == ERR_LABEL


def test_canonical_forms() -> None:
    acl = Acl.parse(["*", "bind:*", "bind:A.com:0022", "bind:k=V"])
    assert acl.texts == ("*", "bind:*", "bind:a.com:22", "bind:k=V")
    assert Acl.parse(list(acl.texts)) == acl


# --- parse errors: which argument, which column ------------------------------------------


@pytest.mark.parametrize(
    ("rule", "column", "code", "words"),
    [
        ("example.com", 1, ERR_NOT_BIND, "start with 'bind:'"),
        ("BIND:example.com", 1, ERR_NOT_BIND, "start with 'bind:'"),
        (" bind:example.com", 1, ERR_NOT_BIND, "start with 'bind:'"),
        ("", 1, ERR_NOT_BIND, "start with 'bind:'"),
        ("bind:", 6, ERR_INVALID_RULE, "needs a hostname"),
        ("bind:foo*.example.com", 9, ERR_INVALID_RULE, "whole leftmost label"),
        ("bind:a.*.example.com", 8, ERR_INVALID_RULE, "whole leftmost label"),
        ("bind:*.", 6, ERR_INVALID_RULE, "needs a suffix"),
        ("bind:a..b", 8, ERR_INVALID_RULE, "empty label"),
        ("bind:.a", 6, ERR_INVALID_RULE, "empty label"),
        ("bind:a_b.com", 7, ERR_INVALID_RULE, "'_' is not allowed"),
        ("bind:-a.com", 6, ERR_INVALID_RULE, "'-' is not allowed"),
        ("bind:a-.com", 7, ERR_INVALID_RULE, "'-' is not allowed"),
        ("bind:bücher.de", 7, ERR_INVALID_RULE, "xn--"),
        ("bind:" + "a" * 64 + ".com", 6, ERR_INVALID_RULE, "63 characters"),
        ("bind:" + "a." * 127 + "aa", 6 + 253, ERR_INVALID_RULE, "253 characters"),
        ("bind:host:0", 11, ERR_INVALID_RULE, "port"),
        ("bind:host:65536", 11, ERR_INVALID_RULE, "port"),
        ("bind:host:", 11, ERR_INVALID_RULE, "port"),
        ("bind:host:2x", 11, ERR_INVALID_RULE, "port"),
        ("bind:host:*", 11, ERR_INVALID_RULE, "port"),
        ("bind:*.example.com:22", 6, ERR_INVALID_RULE, "no wildcard"),
        ("bind::22", 6, ERR_INVALID_RULE, "empty hostname"),
        ("bind:[::1]:22", 6, ERR_INVALID_RULE, "IPv6"),
        ("bind:=v", 6, ERR_INVALID_RULE, "neither side empty"),
        ("bind:k=", 8, ERR_INVALID_RULE, "neither side empty"),
        ("bind:k*=v", 7, ERR_INVALID_RULE, "whole key or value"),
        ("bind:k=v=w", 9, ERR_INVALID_RULE, "'=' is not allowed"),
        ("bind:k=a b", 9, ERR_INVALID_RULE, "' ' is not allowed"),
    ],
)
def test_parse_errors(rule: str, column: int, code: int, words: str) -> None:
    with pytest.raises(AclError) as caught:
        Acl.parse(["bind:ok.example.com", rule], source="--acl")
    (problem,) = caught.value.problems
    assert (problem.index, problem.rule, problem.column, problem.code) == (1, rule, column, code)
    assert words in problem.message
    assert str(caught.value).startswith(f"--acl #2 {rule!r}, column {column}: ")


def test_every_bad_rule_is_reported_at_once() -> None:
    with pytest.raises(AclError) as caught:
        Acl.parse(["nope", "bind:ok.com", "bind:a..b"], source="--acl")
    assert [p.index for p in caught.value.problems] == [0, 2]


@pytest.mark.parametrize(
    "make",
    [
        lambda: HostBind("a..b"),
        lambda: HostBind("*"),
        lambda: HostBind("a.*.b"),
        lambda: HostBind("evil.com/.example.com"),
        lambda: HostBind(""),
        lambda: AddressBind("*.example.com", 22),
        lambda: AddressBind("example.com", 0),
        lambda: AddressBind("example.com", 65536),
        lambda: LabelBind("", "v"),
        lambda: LabelBind("k", "a b"),
    ],
)
def test_bind_targets_are_validated(make: object) -> None:
    with pytest.raises(BindTargetError):
        make()  # type: ignore[operator]
