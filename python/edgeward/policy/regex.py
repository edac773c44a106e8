"""Regular expressions as the public gateway runs them: RE2 (through
`google-re2`, as CEL's `matches`), with Go's `$1` / `${name}` replacements.

RE2 matches in linear time, so a pattern from the policy can never be made
to backtrack by what a client puts in the URL.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import re2

_NAME = re.compile(r"[A-Za-z0-9_]+")

RegexError = re2.error


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """Raises `RegexError`."""
    options = re2.Options()
    options.log_errors = False
    return re2.compile(pattern, options)


def expand(template: str, match: Any) -> str:
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


def _group(match: Any, name: str) -> str:
    try:
        value = match.group(int(name)) if name.isdigit() else match.group(name)
    except (IndexError, KeyError):  # no such group (number or name)
        return ""
    return value or ""


def replace_all(pattern: Any, text: str, template: str) -> tuple[str, list[str]]:
    """Go's `ReplaceAllString`: every match replaced by `template` expanded
    with its groups. Also returns the text and groups of the first match
    (`actions.ngrok.<action>.matches`); empty when nothing matched."""
    matches: list[str] = []

    def one(m: Any) -> str:
        if not matches:
            matches.extend(g or "" for g in (m.group(0), *m.groups()))
        return expand(template, m)

    return pattern.sub(one, text), matches
