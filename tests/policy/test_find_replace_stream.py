"""The streaming matcher (`policy.findreplace`) and the SSE parser
(`policy.sse`), sans-IO: any split of the input gives what the whole gives,
and the whole gives what Go's `ReplaceAll` gives (an oracle written here,
on RE2 directly)."""

from __future__ import annotations

from typing import Any

import pytest
import re2
from hypothesis import example, given
from hypothesis import strategies as st

from edgeward.policy import findreplace, sse
from edgeward.policy.findreplace import (
    WINDOW,
    Replacement,
    StreamReplacer,
    expand_bytes,
    prefix_pattern,
)
from edgeward.policy.sse import Block, EventStreamParser, Message


def go_replace_all(pattern: str, text: bytes, template: str) -> bytes:
    """Go's regexp.ReplaceAll, transcribed: the oracle."""
    options = re2.Options()
    options.log_errors = False
    regex = re2.compile(pattern.encode(), options)
    out, last, pos = [], 0, 0
    while pos <= len(text):
        m = regex.search(text, pos)
        if m is None:
            break
        a0, a1 = m.span()
        out.append(text[last:a0])
        if a1 > last or a0 == 0:
            out.append(expand_bytes(template, m))
        last = a1
        width = _rune_width(text, pos)
        if pos + width > a1:
            pos += width
        elif pos + 1 > a1:
            pos += 1
        else:
            pos = a1
    out.append(text[last:])
    return b"".join(out)


def _rune_width(text: bytes, i: int) -> int:
    """Go's utf8.DecodeRune width: 0 at the end, 1 for an invalid byte."""
    if i >= len(text):
        return 0
    for n in (1, 2, 3, 4):
        try:
            text[i : i + n].decode()
        except UnicodeDecodeError:
            continue
        return n
    return 1


def stream(replacement: Replacement, chunks: list[bytes]) -> bytes:
    replacer = StreamReplacer(replacement)
    return b"".join(replacer.feed(c) for c in chunks) + replacer.finish()


def split(text: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(text)) for c in cuts})
    out, prev = [], 0
    for p in [*points, len(text)]:
        out.append(text[prev:p])
        prev = p
    return out


# The public docs' patterns and some that stress the edges: empty matches,
# assertions at a split, alternation priority, greedy/lazy, UTF-8, flags.
PATTERNS = [
    r'"api_key":\s*"[^"]*"',
    r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}",
    r'"role":\s*"system",\s*"content":\s*"([^"]*)"',
    r"<!--.*?-->",
    r"\b\d{3}-\d{2}-\d{4}\b",
    r"\b\d{4}[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}\b",
    r"\b(IMPORTANT|WARNING|NOTE)\b",
    r"x*",
    r"a|ab",
    r"(ab|a)(c|bcd)",
    r"(a+)(b*)",
    r"^ab",
    r"b$",
    r"(?m)^a.$",
    r"(?i)foo|BAR",
    r"(?s)a.b",
    r"é+x",
    r"[^\"]+",
    r"a{2,3}?",
    r"\Qa.b\E",
    r"(?P<w>a)b|c",
    r"\Ba",
]
ALPHABET = [b"a", b"b", b"c", b"d", b"x", b" ", b'"', b"\n", b"1", b"-", b"@", b".", b"\xc3\xa9"]
ALPHABET += [b"\xc3", b"<!--", b"-->", b'"api_key": "', b"FOO", b"NOTE", b"123-45-6789"]
TEMPLATES = ["<$1>", "", "[${w}$0]", "$$"]


@given(
    st.sampled_from(PATTERNS),
    st.lists(st.sampled_from(ALPHABET), max_size=24).map(b"".join),
    st.lists(st.integers(0, 200), max_size=6),
    st.sampled_from(TEMPLATES),
)
@example(r'"api_key":\s*"[^"]*"', b'{"api_key": "sk-123", "b": 1}', [7, 12, 18], "X")
@example(r"\b\d{3}-\d{2}-\d{4}\b", b"ssn 123-45-6789 and 123-45-67890", [6, 9, 27], "#")
def test_any_split_equals_the_whole(pattern: str, text: bytes, cuts: list[int], to: str) -> None:
    replacement = Replacement.compile(pattern, to)
    want = go_replace_all(pattern, text, to)
    assert replacement.replace_all(text) == want
    assert stream(replacement, split(text, cuts)) == want
    assert stream(replacement, [text[i : i + 1] for i in range(len(text))]) == want


# Random patterns from a small grammar: the prefix closure must hold for
# shapes nobody thought of.
_atoms = st.sampled_from(["a", "b", "c", ".", "[ab]", "[^a]", r"\d", "é", r"\b", "^", "$", "x"])


def _patterns() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.lists(inner, min_size=2, max_size=4).map("".join),
            st.lists(inner, min_size=2, max_size=3).map(lambda xs: "(?:" + "|".join(xs) + ")"),
            st.tuples(inner, st.sampled_from(["*", "+", "?", "{2}", "{1,3}", "*?", "{2,}"])).map(
                lambda t: f"(?:{t[0]}){t[1]}"
            ),
            inner.map(lambda x: f"({x})"),
            inner.map(lambda x: f"(?i:{x})"),
        )

    return st.recursive(_atoms, extend, max_leaves=8)


@given(
    _patterns(),
    st.lists(
        st.sampled_from([b"a", b"b", b"c", b"A", b"1", b" ", b"\xc3\xa9", b"x"]), max_size=16
    ).map(b"".join),
    st.lists(st.integers(0, 20), max_size=5),
)
def test_generated_patterns_split_anywhere(pattern: str, text: bytes, cuts: list[int]) -> None:
    replacement = Replacement.compile(pattern, "<$1>")
    assert replacement.prefixes is not None, pattern
    want = go_replace_all(pattern, text, "<$1>")
    assert stream(replacement, split(text, cuts)) == want


def test_only_a_match_in_progress_is_held() -> None:
    replacement = Replacement.compile(r'"api_key":\s*"[^"]*"', '"api_key": "X"')
    replacer = StreamReplacer(replacement)
    assert replacer.feed(b"hello world ") == b"hello world "  # nothing can start a match
    assert replacer.feed(b'{"api_k') == b"{"  # the longest suffix a match may start with
    assert replacer.feed(b'ey": "sk-1') == b""
    assert replacer.feed(b'23", more') == b'"api_key": "X", more'
    assert replacer.finish() == b""


def test_a_match_in_progress_is_held_at_most_the_window() -> None:
    replacement = Replacement.compile(r"<!--.*?-->", "")
    replacer = StreamReplacer(replacement)
    sent = replacer.feed(b"a<!--")
    assert sent == b"a"
    for _ in range(40):
        sent += replacer.feed(b"x" * 4096)
        assert len(replacer._held) <= WINDOW
    sent += replacer.feed(b"-->b") + replacer.finish()
    # the comment was longer than the window: passed on unchanged
    assert sent == b"a<!--" + b"x" * 4096 * 40 + b"-->b"
    assert stream(replacement, [b"a<!--" + b"x" * 1000 + b"-->b"]) == b"ab"


def test_a_split_utf8_character_is_held_until_complete() -> None:
    replacement = Replacement.compile("é+x", "E")
    replacer = StreamReplacer(replacement)
    assert replacer.feed(b"a\xc3") == b"a"
    assert replacer.feed(b"\xa9\xc3\xa9") == b""
    assert replacer.feed(b"xz") + replacer.finish() == b"Ez"


@pytest.mark.parametrize(
    "pattern",
    [r"a\z", r"(?U)a+", r"[[:alpha:]]+b", r"\pL\p{Greek}", r"\x{41}\x42\101", r"a{,3}", r"[]a]+b"],
)
def test_prefix_patterns_of_rarer_syntax(pattern: str) -> None:
    assert prefix_pattern(pattern) is not None
    replacement = Replacement.compile(pattern, "#")
    text = "xAAAa{,3}]]ab Bab\u03b1 AB ab".encode()
    want = go_replace_all(pattern, text, "#")
    assert stream(replacement, [text[i : i + 2] for i in range(0, len(text), 2)]) == want


def test_without_a_prefix_pattern_the_window_is_held(monkeypatch: pytest.MonkeyPatch) -> None:
    replacement = Replacement.compile("ab", "X")
    blind = Replacement(replacement.regex, "X", None)
    monkeypatch.setattr(findreplace, "WINDOW", 8)
    replacer = StreamReplacer(blind)
    out = replacer.feed(b"0123456789a")
    assert out == b"012"  # all but the last 8 bytes
    assert out + replacer.feed(b"b") + replacer.finish() == b"0123456789X"


def test_matches_are_reported() -> None:
    seen: list[bytes] = []
    replacement = Replacement.compile(r"\d+", "#")
    assert replacement.replace_all(b"a1b22c", seen.append) == b"a#b#c"
    assert seen == [b"1", b"22"]


# --- Server-Sent Events -------------------------------------------------------------


def parse(chunks: list[bytes]) -> list[Block | bytes]:
    parser = EventStreamParser()
    items: list[Block | bytes] = []
    for chunk in chunks:
        items += parser.feed(chunk)
    return items + parser.finish()


def shape(items: list[Block | bytes]) -> list[Any]:
    """The blocks, with the pass-through bytes between them joined."""
    out: list[Any] = []
    raw = b""
    for item in items:
        if isinstance(item, Block):
            out += [raw, [(x.name, x.value, x.raw, x.end) for x in item.lines], item.blank]
            raw = b""
        else:
            raw += item
    return [*out, raw]


SSE_PIECES = [b"data: a", b"data:b", b"data", b"\n", b"\r", b"\r\n", b": note", b"event: e"]
SSE_PIECES += [b"id: 1", b"retry: 10", b"x", b" ", b"\xef\xbb\xbf", b"da", b"ta: \xc3\xa9"]


@given(
    st.lists(st.sampled_from(SSE_PIECES), max_size=30).map(b"".join),
    st.lists(st.integers(0, 300), max_size=8),
)
def test_sse_any_split_parses_as_the_whole(text: bytes, cuts: list[int]) -> None:
    whole = parse([text])
    assert b"".join(i.raw() if isinstance(i, Block) else i for i in whole) == text
    assert shape(parse(split(text, cuts))) == shape(whole)


def test_sse_fields_and_line_endings() -> None:
    text = (
        b"\xef\xbb\xbfdata: one\r\ndata:two\revent: tick\nid: 7\nretry: 300\n: hi\n\n: only\n\nda"
    )
    items = parse([text])
    assert items[0] == sse.BOM
    block = items[1]
    assert isinstance(block, Block) and block.is_message
    message = Message.of(block)
    assert message.values() == {"data": "one\ntwo", "event": "tick", "id": "7", "retry": "300"}
    assert message.encode() == block.raw()  # unchanged: byte for byte
    comments = items[2]
    assert isinstance(comments, Block) and not comments.is_message
    assert items[3:] == [b"da"]  # unterminated at the end: passed on as it is


def test_sse_message_written_back() -> None:
    block = parse([b"id: 1\r\ndata: a\r\n: c\r\ndata: b\r\nretry: 5\r\n\r\n"])[0]
    assert isinstance(block, Block)
    message = Message.of(block)
    message.data, message.retry, message.changed = b"x\ny\r\nz", [b"9"], True
    assert message.encode() == (
        b"id: 1\r\ndata: x\r\ndata: y\r\ndata: z\r\n: c\r\nretry: 9\r\n\r\n"
    )


def test_sse_oversized_message_passes_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "MAX_MESSAGE", 16)
    text = b"data: small\n\ndata: " + b"y" * 40 + b"\ndata: z\r\r\ndata: next\n\n"
    parser = EventStreamParser()
    items: list[Block | bytes] = []
    for i in range(0, len(text), 5):
        items += parser.feed(text[i : i + 5])
    items += parser.finish()
    assert parser.oversized == 1
    blocks = [i for i in items if isinstance(i, Block)]
    assert [Message.of(b).data for b in blocks] == [b"small", b"next"]
    assert b"".join(i.raw() if isinstance(i, Block) else i for i in items) == text
