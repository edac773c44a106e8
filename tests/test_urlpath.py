"""The request-path normalisation the edge applies before routing and
policy (`edgeward.urlpath`): the rule case by case, and its properties."""

from __future__ import annotations

import posixpath
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeward.urlpath import PathError, normalize_path, normalize_target, remove_dot_segments


@pytest.mark.parametrize(
    ("target", "normal"),
    [
        (b"/", b"/"),
        (b"/admin", b"/admin"),
        (b"/./admin", b"/admin"),
        (b"/x/../admin", b"/admin"),
        (b"/x/%2e%2e/admin", b"/admin"),
        (b"/x/%2E./admin", b"/admin"),
        (b"//admin", b"/admin"),
        (b"/a//b///c", b"/a/b/c"),
        (b"/..", b"/"),
        (b"/../..", b"/"),
        (b"/a/b/..", b"/a/"),
        (b"/a/.", b"/a/"),
        (b"/a/./", b"/a/"),
        (b"/a/b/../../c", b"/c"),
        (b"/.hidden/..file", b"/.hidden/..file"),
        (b"/%41%7e%2D%5f", b"/A~-_"),
        (b"/%c3%a9%20x", b"/%C3%A9%20x"),
        (b"/%25%32%65", b"/%252e"),  # an escaped "%" stays escaped: no double decoding
        (b"/x?a=/../b&c=%2e", b"/x?a=/../b&c=%2e"),  # the query is never touched
        (b"/x/..?y", b"/?y"),
        (b"*", b"*"),
    ],
)
def test_normalisation(target: bytes, normal: bytes) -> None:
    assert normalize_target(target) == normal


def test_nothing_to_do_returns_the_same_object() -> None:
    target = b"/api/v1/items?id=42"
    assert normalize_target(target) is target


@pytest.mark.parametrize("target", [b"/%2f", b"/%2F", b"/a%5cb", b"/a\\b"])
def test_escaped_slashes_are_rejected_by_default(target: bytes) -> None:
    with pytest.raises(PathError) as info:
        normalize_target(target)
    assert info.value.escaped_slash


@pytest.mark.parametrize(
    ("target", "keep", "unescape"),
    [
        (b"/%2fadmin", b"/%2Fadmin", b"/admin"),
        (b"/a%2Fb", b"/a%2Fb", b"/a/b"),
        (b"/x%5c..%5cadmin", b"/x%5C..%5Cadmin", b"/admin"),
        (b"/x\\..\\admin", b"/x\\..\\admin", b"/admin"),
        (b"/x/..%2fadmin", b"/x/..%2Fadmin", b"/admin"),
    ],
)
def test_escaped_slash_rules(target: bytes, keep: bytes, unescape: bytes) -> None:
    assert normalize_target(target, "keep") == keep
    assert normalize_target(target, "unescape") == unescape


@pytest.mark.parametrize("target", [b"admin", b"", b"http://x/", b"/%", b"/%4", b"/%zz", b"/%g0"])
def test_malformed_paths(target: bytes) -> None:
    with pytest.raises(PathError) as info:
        normalize_target(target)
    assert not info.value.escaped_slash


# --- properties -------------------------------------------------------------------------

SEGMENT_PARTS = [b"a", b"admin", b"x", b".", b"..", b"%2e", b"%2E", b".%2e", b"%41", b"%7e"]
SEGMENT_PARTS += [b"%c3%a9", b"%25", b"~", b"-", b"", b"%2f", b"%5C", b"\\", b";", b"%20"]
segments = st.lists(st.sampled_from(SEGMENT_PARTS), min_size=0, max_size=3).map(b"".join)
paths = st.lists(segments, max_size=8).map(lambda s: b"/" + b"/".join(s))
rules = st.sampled_from(["reject", "keep", "unescape"])
UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
DOT_SEGMENT = re.compile(rb"(^|/)\.\.?(/|$)")


def _normal(path: bytes, rule: str) -> bytes | None:
    try:
        return normalize_path(path, rule)  # type: ignore[arg-type]
    except PathError:
        return None


@given(paths, rules)
def test_idempotent(path: bytes, rule: str) -> None:
    normal = _normal(path, rule)
    if normal is not None:
        assert normalize_path(normal, rule) == normal  # type: ignore[arg-type]


@given(paths, rules)
def test_no_dot_segment_no_double_slash_no_escaped_dot(path: bytes, rule: str) -> None:
    normal = _normal(path, rule)
    if normal is None:
        return
    assert normal.startswith(b"/")
    assert b"//" not in normal
    assert not DOT_SEGMENT.search(normal)
    assert b"%2e" not in normal.lower()
    for escape in re.findall(rb"%(..)", normal):
        assert escape == escape.upper()  # and never of an unreserved character
        assert int(escape, 16) not in UNRESERVED


@given(paths, rules)
def test_what_an_upstream_would_normalise_is_already_normal(path: bytes, rule: str) -> None:
    """posixpath.normpath is one upstream's idea of dot-segments and slashes
    (after decoding the escaped dots): it changes nothing in our output."""
    normal = _normal(path, rule)
    if normal is None:
        return
    trailing = normal.endswith(b"/")
    upstream = posixpath.normpath(normal.decode("latin-1")).encode("latin-1")
    upstream = b"/" + upstream.lstrip(b"/")  # normpath keeps a leading "//"
    assert upstream + (b"/" if trailing and upstream != b"/" else b"") == normal


@given(paths, rules, st.data())
def test_escaping_unreserved_characters_changes_nothing(
    path: bytes, rule: str, data: st.DataObject
) -> None:
    plain = bytes(ch for ch in path if ch not in b"%")
    positions = [i for i, ch in enumerate(plain) if ch in UNRESERVED]
    if not positions:
        return
    chosen = data.draw(st.sets(st.sampled_from(positions)))
    escaped = b"".join(
        b"%%%02x" % ch if i in chosen else bytes((ch,)) for i, ch in enumerate(plain)
    )
    assert _normal(escaped, rule) == _normal(plain, rule)


@given(paths, segments.filter(lambda s: s not in (b"", b".", b"..") and b"%" not in s))
def test_a_detour_through_a_segment_changes_nothing(path: bytes, detour: bytes) -> None:
    """`/x/../` inserted anywhere is the same path (the `..` bypass)."""
    if b"\\" in detour:
        return
    cut = path.find(b"/", 1)
    if cut < 0:
        return  # a detour at the very end leaves a trailing slash (`/a/x/..` is `/a/`)
    assert _normal(path[:cut] + b"/" + detour + b"/.." + path[cut:], "keep") == _normal(
        path, "keep"
    )


def test_remove_dot_segments_matches_rfc_examples() -> None:
    # RFC 3986 §5.2.4's examples, on absolute paths
    assert remove_dot_segments(b"/a/b/c/./../../g") == b"/a/g"
    assert remove_dot_segments(b"/mid/content=5/../6") == b"/mid/6"
