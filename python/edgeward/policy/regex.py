"""Regular expressions as the public gateway writes them (Go's RE2 syntax,
`$1` / `${name}` replacements) on Python's `re`.

The patterns come from the policy author (trusted); the input is a URL the
edge already bounded in size. The syntax RE2 accepts and `re` does not
spell the same way is translated: `(?<name>...)` groups and `\\z`.
"""

from __future__ import annotations

import re
from functools import lru_cache

_NAMED_GROUP = re.compile(r"(?<!\\)\(\?<(?=[A-Za-z_])")
_END_OF_TEXT = re.compile(r"(?<!\\)((?:\\\\)*)\\z")
_NAME = re.compile(r"[A-Za-z0-9_]+")


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Raises `re.error`."""
    translated = _NAMED_GROUP.sub("(?P<", pattern)
    translated = _END_OF_TEXT.sub(r"\1\\Z", translated)
    return re.compile(translated)


def expand(template: str, match: re.Match[str]) -> str:
    """Go's `Regexp.Expand`: `$1`, `${1}`, `$name`, `${name}`; `$$` is `$`;
    an unknown group is empty; a `$` not followed by a name is literal."""
    out: list[str] = []
    i, n = 0, len(template)
    while i < n:
        j = template.find("$", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        i = j + 1
        if i < n and template[i] == "$":
            out.append("$")
            i += 1
            continue
        name: str | None = None
        if i < n and template[i] == "{":
            end = template.find("}", i)
            if end > i + 1 and _NAME.fullmatch(template, i + 1, end):
                name, i = template[i + 1 : end], end + 1
        else:
            m = _NAME.match(template, i)
            if m:
                name, i = m.group(), m.end()
        if name is None:
            out.append("$")
            continue
        out.append(_group(match, name))
    return "".join(out)


def _group(match: re.Match[str], name: str) -> str:
    try:
        value = match.group(int(name)) if name.isdigit() else match.group(name)
    except IndexError:  # no such group (number or name)
        return ""
    return value or ""


def replace_all(pattern: re.Pattern[str], text: str, template: str) -> tuple[str, list[str]]:
    """Go's `ReplaceAllString`: every match replaced by `template` expanded
    with its groups. Also returns the matched texts and groups of the first
    match (for `actions.ngrok.<action>.matches`)."""
    matches: list[str] = []

    def one(m: re.Match[str]) -> str:
        if not matches:
            matches.extend(g or "" for g in (m.group(0), *m.groups()))
        return expand(template, m)

    return pattern.sub(one, text), matches
