"""CEL lexis (docs/cel.md §2): source text to tokens.

Token kinds are the literal kinds (``int uint double string bytes``),
``ident``, ``quoted`` (a back-quoted field name), the keywords ``true false
null in``, the operators and punctuation as themselves, and ``eof``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from edgeward.expr.errors import PolicyExprError

RESERVED: Final = frozenset(
    {
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    }
)
KEYWORDS: Final = frozenset({"true", "false", "null", "in"})

_OPERATORS: Final = ("==", "!=", "<=", ">=", "&&", "||", "<", ">", "+", "-", "*", "/", "%", "!")
_PUNCTUATION: Final = frozenset("()[]{}.,:?")
_WHITESPACE: Final = frozenset("\t\n\f\r ")
_IDENT_START: Final = frozenset("_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS: Final = frozenset("0123456789")
_IDENT_CHARS: Final = _IDENT_START | _DIGITS
_HEX: Final = frozenset("0123456789abcdefABCDEF")
_QUOTED_CHARS: Final = _IDENT_CHARS | frozenset("./- ")
_SIMPLE_ESCAPES: Final = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "?": "?",
    '"': '"',
    "'": "'",
    "`": "`",
}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    value: Any
    pos: int  # code point offset of the first character
    end: int


class Lexer:
    """Tokenises one expression; `tokens()` raises `PolicyExprError`."""

    def __init__(self, source: str, start: int = 0, end: int | None = None) -> None:
        """Tokenises ``source[start:end]``; positions and errors refer to the
        whole `source` (a `${...}` template locates its errors this way)."""
        self.source = source
        self.pos = start
        self.limit = len(source) if end is None else end

    def error(self, message: str, pos: int) -> PolicyExprError:
        return PolicyExprError(message, self.source, pos)

    def tokens(self) -> list[Token]:
        out = []
        while True:
            token = self.next()
            out.append(token)
            if token.kind == "eof":
                return out

    def next(self) -> Token:
        """The next token (``eof`` at the end of the source)."""
        src = self.source
        n = self.limit
        while self.pos < n:
            ch = src[self.pos]
            if ch in _WHITESPACE:
                self.pos += 1
            elif src.startswith("//", self.pos, n):
                newline = src.find("\n", self.pos)
                self.pos = n if newline < 0 else newline + 1
            else:
                break
        start = self.pos
        if start >= n:
            return Token("eof", None, start, start)
        ch = src[start]
        if ch in _DIGITS or (ch == "." and start + 1 < n and src[start + 1] in _DIGITS):
            return self._number(start)
        if ch in "'\"":
            return self._string(start, start, raw=False, is_bytes=False)
        if ch in _IDENT_START:
            end = start
            while end < n and src[end] in _IDENT_CHARS:
                end += 1
            word = src[start:end]
            if end < n and src[end] in "'\"" and _is_string_prefix(word):
                lowered = word.lower()
                return self._string(start, end, raw="r" in lowered, is_bytes="b" in lowered)
            self.pos = end
            if word in KEYWORDS:
                return Token(word, None, start, end)
            return Token("ident", word, start, end)
        if ch == "`":
            end = start + 1
            while end < n and src[end] in _QUOTED_CHARS:
                end += 1
            if end >= n or src[end] != "`" or end == start + 1:
                raise self.error("malformed back-quoted field name", start)
            self.pos = end + 1
            return Token("quoted", src[start + 1 : end], start, end + 1)
        for op in _OPERATORS:
            if src.startswith(op, start, n):
                self.pos = start + len(op)
                return Token(op, None, start, self.pos)
        if ch in _PUNCTUATION:
            self.pos = start + 1
            return Token(ch, None, start, start + 1)
        raise self.error(f"unexpected character {ch!r}", start)

    # --- numbers ------------------------------------------------------------------

    def _number(self, start: int) -> Token:
        src = self.source
        n = self.limit
        pos = start
        if src.startswith(("0x", "0X"), pos, n):
            pos += 2
            digits_start = pos
            while pos < n and src[pos] in _HEX:
                pos += 1
            if pos == digits_start:
                raise self.error("malformed hex literal", start)
            value = int(src[digits_start:pos], 16)
            return self._integer(start, pos, value)
        while pos < n and src[pos] in _DIGITS:
            pos += 1
        is_float = False
        if pos + 1 < n and src[pos] == "." and src[pos + 1] in _DIGITS:
            is_float = True
            pos += 1
            while pos < n and src[pos] in _DIGITS:
                pos += 1
        if pos < n and src[pos] in "eE":
            exp = pos + 1
            if exp < n and src[exp] in "+-":
                exp += 1
            if exp < n and src[exp] in _DIGITS:
                is_float = True
                pos = exp
                while pos < n and src[pos] in _DIGITS:
                    pos += 1
        text = src[start:pos]
        if is_float:
            double = float(text)
            if math.isinf(double):
                raise self.error(f"double literal {text} out of range", start)
            self.pos = pos
            return Token("double", double, start, pos)
        return self._integer(start, pos, int(text))

    def _integer(self, start: int, pos: int, value: int) -> Token:
        src = self.source
        if pos < self.limit and src[pos] in "uU":
            self.pos = pos + 1
            if value > 2**64 - 1:
                raise self.error("uint literal out of range", start)
            return Token("uint", value, start, pos + 1)
        self.pos = pos
        return Token("int", value, start, pos)  # the parser checks the int64 range

    # --- strings ------------------------------------------------------------------

    def _string(self, start: int, quote_at: int, *, raw: bool, is_bytes: bool) -> Token:
        src = self.source
        n = self.limit
        quote = src[quote_at]
        delimiter = quote * 3 if src.startswith(quote * 3, quote_at, n) else quote
        pos = quote_at + len(delimiter)
        parts: list[str] = []  # text, with bytes escapes as chr(0..255) markers below
        raw_bytes: list[int | str] = []
        while True:
            if pos >= n:
                raise self.error("unterminated string literal", start)
            if src.startswith(delimiter, pos, n):
                pos += len(delimiter)
                break
            ch = src[pos]
            if len(delimiter) == 1 and ch in "\r\n":
                raise self.error("unterminated string literal", start)
            if ch == "\\" and not raw:
                value, pos = self._escape(pos, is_bytes)
                if is_bytes and isinstance(value, int):
                    raw_bytes.append(value)
                else:
                    assert isinstance(value, str)
                    (raw_bytes if is_bytes else parts).append(value)
                continue
            (raw_bytes if is_bytes else parts).append(ch)
            pos += 1
        self.pos = pos
        if is_bytes:
            out = bytearray()
            for piece in raw_bytes:
                out += bytes([piece]) if isinstance(piece, int) else piece.encode("utf-8")
            return Token("bytes", bytes(out), start, pos)
        return Token("string", "".join(parts), start, pos)

    def _escape(self, pos: int, is_bytes: bool) -> tuple[str | int, int]:
        """The escape at `pos` (a backslash): its text (or byte value in a bytes
        literal) and the position after it."""
        src = self.source
        if pos + 1 >= self.limit:
            raise self.error("unterminated string literal", pos)
        ch = src[pos + 1]
        if ch in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[ch], pos + 2
        if ch in "xX":
            digits = src[pos + 2 : min(pos + 4, self.limit)]
            if len(digits) != 2 or not all(c in _HEX for c in digits):
                raise self.error("malformed \\x escape", pos)
            value = int(digits, 16)
            return (value if is_bytes else chr(value)), pos + 4
        if ch in "uU":
            width = 4 if ch == "u" else 8
            digits = src[pos + 2 : min(pos + 2 + width, self.limit)]
            if is_bytes:
                raise self.error(f"\\{ch} escapes are not allowed in bytes literals", pos)
            if len(digits) != width or not all(c in _HEX for c in digits):
                raise self.error(f"malformed \\{ch} escape", pos)
            value = int(digits, 16)
            if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                raise self.error(f"invalid code point in \\{ch} escape", pos)
            return chr(value), pos + 2 + width
        if ch in "0123":
            digits = src[pos + 1 : min(pos + 4, self.limit)]
            if len(digits) != 3 or not all(c in "01234567" for c in digits):
                raise self.error("malformed octal escape", pos)
            value = int(digits, 8)
            return (value if is_bytes else chr(value)), pos + 4
        raise self.error(f"invalid escape sequence \\{ch}", pos)


def _is_string_prefix(word: str) -> bool:
    lowered = word.lower()
    return lowered in ("r", "b", "rb", "br")
