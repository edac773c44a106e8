"""Find and replace on a stream of bytes, with RE2 regexes and Go's
`ReplaceAll` semantics, holding back only what a match may still need.

A body arrives in chunks and a match may span two of them. Holding the
whole body would defeat streaming; holding a fixed tail would delay every
byte by that much. Instead, after each chunk the `StreamReplacer` asks
where the earliest match *still in progress* could begin: the leftmost
position whose rest is a prefix of some match of the pattern. Everything
before it is final (no later byte can change how it matches) and is
replaced and sent; only the suffix from that position is held. With the
pattern `"api_key":\\s*"[^"]*"`, a body ending in `... "api_k` holds six
bytes and one ending in `... other text` holds none.

That position is found with RE2 itself, by a second pattern built from the
first: its *prefix closure* `pre(P)` (every prefix of every string `P`
matches, assertions kept where the prefix goes past them), searched as
`pre(P)\\z`: RE2 returns the leftmost start, in linear time. `prefix_pattern`
builds it from the pattern's structure; atoms (literals, classes, escapes)
are copied as written, so no RE2 syntax has to be re-implemented.

Memory is bounded: a match in progress is held for at most `WINDOW` bytes
(64 KiB). Past that the oldest held bytes are given up: sent unchanged, so
a match longer than the window is not replaced (docs/policy.md).

Bodies are matched as UTF-8 (RE2's default, as the public gateway's Go
regexp): a chunk that ends inside a multi-byte character holds those bytes
until the character is complete. Invalid UTF-8 matches no character class.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

from edgeward.policy.regex import RegexError, compile_pattern, expand

WINDOW = 64 * 1024  # the most bytes a match in progress may hold back

OnMatch = Callable[[bytes], None]
"""Told the text of each match (as it is replaced)."""


# --- the prefix closure of an RE2 pattern ---------------------------------------------
#
# A structural parser: concatenation, alternation, groups, repetition and
# flags are understood; every atom is kept as its source text, wrapped in
# the flags in force where it was written (`(?i:a)`), so the pieces can be
# rearranged. The pattern has already been compiled by RE2, so it is valid.


@dataclass(frozen=True, slots=True)
class _Atom:
    text: str  # one character's worth: a literal, a class, an escape, `.`


@dataclass(frozen=True, slots=True)
class _Assert:
    text: str  # zero-width: ^ $ \b \B \A \z


@dataclass(frozen=True, slots=True)
class _Cat:
    items: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Alt:
    items: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Rep:
    item: _Node
    least: int
    most: int | None  # None: unbounded


_Node = _Atom | _Assert | _Cat | _Alt | _Rep

_ASSERT_ESCAPES = frozenset("bBAz")
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0

    def parse(self) -> _Node:
        node = self._alternation("")
        if self.i != len(self.p):
            raise ValueError(f"unbalanced ')' at {self.i}")
        return node

    def _alternation(self, flags: str) -> _Node:
        branches: list[_Node] = []
        items: list[_Node] = []
        while self.i < len(self.p):
            c = self.p[self.i]
            if c == ")":
                break
            if c == "|":
                self.i += 1
                branches.append(_Cat(tuple(items)))
                items = []
                continue
            if self.p.startswith("(?", self.i) and self._flag_group_end() is not None:
                end = self._flag_group_end()
                assert end is not None
                flags = _merge_flags(flags, self.p[self.i + 2 : end])
                self.i = end + 1
                continue
            atom = self._atom(flags)
            if atom is None:
                continue
            items.append(self._repeats(atom))
        branches.append(_Cat(tuple(items)))
        return branches[0] if len(branches) == 1 else _Alt(tuple(branches))

    def _flag_group_end(self) -> int | None:
        """The index of the `)` of a `(?flags)` at `i`, if it is one."""
        j = self.i + 2
        while j < len(self.p) and (self.p[j].isalpha() or self.p[j] == "-"):
            j += 1
        if j < len(self.p) and self.p[j] == ")" and j > self.i + 2:
            return j
        return None

    def _repeats(self, node: _Node) -> _Node:
        while self.i < len(self.p):
            c = self.p[self.i]
            if c in "*+?":
                self.i += 1
                node = _Rep(node, 1 if c == "+" else 0, 1 if c == "?" else None)
            elif c == "{" and (m := _REPEAT.match(self.p, self.i)):
                self.i = m.end()
                low = int(m.group(1))
                if m.group(2) is None:
                    most: int | None = low
                else:
                    most = int(m.group(3)) if m.group(3) else None
                node = _Rep(node, low, most)
            else:
                break
            if self.i < len(self.p) and self.p[self.i] == "?":  # lazy: same language
                self.i += 1
        return node

    def _atom(self, flags: str) -> _Node | None:
        p, i = self.p, self.i
        c = p[i]
        if c == "(":
            inner_flags = flags
            if p.startswith("(?:", i):
                self.i = i + 3
            elif p.startswith("(?P<", i) or p.startswith("(?<", i):
                self.i = p.index(">", i) + 1
            elif p.startswith("(?", i):
                colon = p.index(":", i)
                inner_flags = _merge_flags(flags, p[i + 2 : colon])
                self.i = colon + 1
            else:
                self.i = i + 1
            node = self._alternation(inner_flags)
            self.i += 1  # the ")"
            return node
        if c in "^$":
            self.i = i + 1
            return _Assert(_wrap(c, flags))
        if c == "[":
            self.i = _class_end(p, i)
            return _Atom(_wrap(p[i : self.i], flags))
        if c == "\\":
            return self._escape(flags)
        self.i = i + 1
        return _Atom(_wrap(c, flags))

    def _escape(self, flags: str) -> _Node | None:
        p, i = self.p, self.i
        c = p[i + 1]
        if c == "Q":  # \Q...\E: literal text
            end = p.find("\\E", i + 2)
            text = p[i + 2 :] if end < 0 else p[i + 2 : end]
            self.i = len(p) if end < 0 else end + 2
            if not text:
                return None
            return _Cat(tuple(_Atom(_wrap(_literal(ch), flags)) for ch in text))
        if c == "E":  # a stray \E is ignored
            self.i = i + 2
            return None
        if c in _ASSERT_ESCAPES:
            self.i = i + 2
            return _Assert(p[i : i + 2])
        self.i = _escape_end(p, i)
        return _Atom(_wrap(p[i : self.i], flags))


def _merge_flags(flags: str, change: str) -> str:
    on, _, off = change.partition("-")
    current = set(flags) | set(on)
    current -= set(off)
    return "".join(sorted(current & {"i", "m", "s"}))  # U changes no language


def _wrap(atom: str, flags: str) -> str:
    return f"(?{flags}:{atom})" if flags else atom


def _literal(ch: str) -> str:
    if ch.isalnum() or not ch.isascii() or ch == " ":
        return ch
    return "\\" + ch if ch.isprintable() else f"\\x{{{ord(ch):x}}}"


def _escape_end(p: str, i: int) -> int:
    c = p[i + 1]
    j = i + 2
    if c in "xpP":
        if j < len(p) and p[j] == "{":
            return p.index("}", j) + 1
        return j + (2 if c == "x" else 1)
    if c in "01234567":
        while j < len(p) and j < i + 4 and p[j] in "01234567":
            j += 1
    return j


def _class_end(p: str, i: int) -> int:
    j = i + 1
    if j < len(p) and p[j] == "^":
        j += 1
    if j < len(p) and p[j] == "]":  # a leading ] is literal
        j += 1
    while p[j] != "]":
        if p.startswith("[:", j) and (k := p.find(":]", j + 2)) >= 0:
            j = k + 2
        elif p[j] == "\\":
            j = _escape_end(p, j)
        else:
            j += 1
    return j + 1


def _full(node: _Node) -> str:
    if isinstance(node, _Atom | _Assert):
        return node.text
    if isinstance(node, _Cat):
        return "".join(
            _group(_full(item)) if isinstance(item, _Alt) else _full(item) for item in node.items
        )
    if isinstance(node, _Alt):
        return "|".join(_full(item) for item in node.items)
    most = "" if node.most is None else str(node.most)
    return f"(?:{_full(node.item)}){{{node.least},{most}}}"


def _group(text: str) -> str:
    return f"(?:{text})"


def _prefixes(node: _Node) -> str:
    """A pattern matching every prefix of what `node` matches."""
    if isinstance(node, _Atom):
        return f"(?:{node.text})?"
    if isinstance(node, _Assert):
        return ""  # cut before it (taking it only narrows what follows)
    if isinstance(node, _Cat):
        # pre(a b c) = pre(a) | a (pre(b) | b pre(c)): linear in size
        out: str | None = None
        for item in reversed(node.items):
            if out is None:
                out = _prefixes(item)
                continue
            head = _full(item)
            if isinstance(item, _Alt):
                head = _group(head)
            out = _group(f"{_prefixes(item)}|{head}{out}")
        return out or ""
    if isinstance(node, _Alt):
        return _group("|".join(_prefixes(item) for item in node.items))
    if node.most == 0:
        return ""
    count = "*" if node.most is None else f"{{0,{node.most - 1}}}"
    return f"(?:{_full(node.item)}){count}{_group(_prefixes(node.item))}"


@lru_cache(maxsize=256)
def prefix_pattern(pattern: str) -> Any | None:
    """RE2 for `pre(pattern)\\z` (bytes), or None when it cannot be built
    (matching then holds `WINDOW` bytes back). `pattern` must be valid."""
    try:
        source = _prefixes(_Parser(pattern).parse())
        options = re2.Options()
        options.log_errors = False
        return re2.compile(f"(?:{source})\\z".encode(), options)
    except (ValueError, IndexError, RegexError):
        return None


# --- replacing -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Replacement:
    """One compiled `from`/`to` pair (after interpolation)."""

    regex: Any  # RE2, bytes
    template: str  # Go's $1 / ${name} syntax
    prefixes: Any | None  # prefix_pattern(...), None: hold WINDOW bytes

    @classmethod
    def compile(cls, pattern: str, template: str) -> Replacement:
        """Raises `RegexError`."""
        regex = compile_bytes(pattern)
        return cls(regex, template, prefix_pattern(pattern))

    def replace_all(self, text: bytes, on_match: OnMatch | None = None) -> bytes:
        """Go's `ReplaceAll` on the whole `text`."""
        replacer = StreamReplacer(self, on_match)
        return replacer.feed(text, final=True)


@lru_cache(maxsize=256)
def compile_bytes(pattern: str) -> Any:
    """`pattern` for matching bytes as UTF-8. Raises `RegexError`."""
    compile_pattern(pattern)  # the text form first: one error message for both
    options = re2.Options()
    options.log_errors = False
    return re2.compile(pattern.encode("utf-8"), options)


class _TextMatch:
    """A bytes match seen as text by `regex.expand` (surrogateescape: the
    groups come back byte for byte)."""

    __slots__ = ("m",)

    def __init__(self, m: Any) -> None:
        self.m = m

    def group(self, key: int | str) -> str | None:
        value = self.m.group(key)
        return None if value is None else value.decode("utf-8", "surrogateescape")


def expand_bytes(template: str, match: Any) -> bytes:
    return expand(template, _TextMatch(match)).encode("utf-8", "surrogateescape")


class StreamReplacer:
    """One `Replacement` applied to a stream: `feed` each chunk, then
    `finish`; the outputs joined are exactly `replace_all` of the whole.
    Holds at most `WINDOW` bytes (plus the chunk being fed)."""

    __slots__ = ("_base", "_before", "_held", "_last_end", "_on_match", "_r", "_search")

    def __init__(self, replacement: Replacement, on_match: OnMatch | None = None) -> None:
        self._r = replacement
        self._on_match = on_match
        self._held = b""  # not yet sent
        self._before = b""  # the byte sent just before `_held` (context for \b, ^)
        self._base = 0  # offset in the stream of `_held[0]`
        self._search = 0  # offset where the next search starts (Go's searchPos)
        self._last_end = -1  # offset where the last match ended (Go's lastMatchEnd)

    def finish(self) -> bytes:
        return self.feed(b"", final=True)

    def feed(self, data: bytes, final: bool = False) -> bytes:
        text = self._before + self._held + data
        off = len(self._before)  # text[off] is at stream offset _base
        end = len(text) if final else _complete(text, off)
        out: list[bytes] = []
        sent = self._replace(text, off, end, final=final, out=out)
        if not final and end - sent > WINDOW:  # give the oldest held bytes up
            self._search = max(self._search, self._base + (end - WINDOW - off))
            sent = self._replace(text, off, end, final=final, out=out, sent=sent)
        if final:
            sent = len(text)
        self._before = text[sent - 1 : sent] if sent > 0 else b""
        self._held = text[sent:]
        self._base += sent - off
        self._search = max(self._search, self._base)
        return b"".join(out)

    def _replace(
        self, text: bytes, off: int, end: int, *, final: bool, out: list[bytes], sent: int = -1
    ) -> int:
        """Replace the final matches in text[:end], append what is final to
        `out` and return the index up to which text is sent."""
        base = self._base - off  # stream offset of text[0]
        if sent < 0:
            sent = off
        regex = self._r.regex
        view = text if end == len(text) else text[:end]
        s = self._search - base
        pending = end + 1 if final else self._pending(view, s)
        while s <= end:
            m = regex.search(view, s)
            if m is None:
                break
            a0, a1 = m.span()
            if a0 >= pending:
                break
            out.append(text[sent:a0])
            if a1 + base > self._last_end or a0 + base == 0:
                if self._on_match is not None:
                    self._on_match(m.group())
                out.append(expand_bytes(self._r.template, m))
            sent = a1
            self._last_end = a1 + base
            width = _width(view, s)
            if s + width > a1:
                s += width
            elif s + 1 > a1:
                s += 1
            else:
                s = a1
        cut = end if final else max(sent, min(pending, end))
        if cut > sent:
            out.append(text[sent:cut])
            sent = cut
        self._search = max(s, sent) + base
        return sent

    def _pending(self, view: bytes, s: int) -> int:
        """The leftmost position from `s` where a match may be in progress."""
        prefixes = self._r.prefixes
        if prefixes is None:
            return max(s, len(view) - WINDOW)
        m = prefixes.search(view, min(s, len(view)))
        return len(view) if m is None else max(m.start(), s)


def _complete(text: bytes, off: int) -> int:
    """The end of `text` without a trailing incomplete UTF-8 character."""
    n = len(text)
    for back in range(1, min(4, n - off + 1)):
        b = text[n - back]
        if b < 0x80:
            return n
        if b >= 0xC0:
            need = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            return n - back if need > back else n
    return n


def _width(text: bytes, i: int) -> int:
    """Go's `utf8.DecodeRune` width at `i`: 0 at the end, 1 for an invalid byte."""
    if i >= len(text):
        return 0
    b = text[i]
    if b < 0x80:
        return 1
    need = 2 if 0xC2 <= b < 0xE0 else 3 if 0xE0 <= b < 0xF0 else 4 if 0xF0 <= b < 0xF5 else 1
    if need == 1 or i + need > len(text):
        return 1
    if all(0x80 <= c < 0xC0 for c in text[i + 1 : i + need]):
        return need
    return 1
