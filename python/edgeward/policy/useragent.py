"""`req.user_agent.*`: the User-Agent parsed with the uap-core database
(`ua-parser`, its regexes from `ua-parser-builtins`, matched by the Rust
engine of `ua-parser-rs` when installed, else google-re2), one parse per
distinct string (a bounded LRU cache).

Names follow the public docs (`req.user_agent.name == 'Edge'`): uap-core's
family, with the mobile variants folded into the browser they are
(`Mobile Safari` is `Safari`, `Chrome Mobile` is `Chrome`); the device kind
is in `is_mobile`/`is_tablet`/`is_desktop`. A few AI crawlers the docs name
and uap-core misreads are matched first (`_EXTRA`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

__all__ = ["UserAgent", "parse_user_agent"]


@dataclass(frozen=True, slots=True)
class UserAgent:
    name: str = ""
    version: str = ""
    os: str = ""
    os_version: str = ""
    device: str = ""
    is_mobile: bool = False
    is_tablet: bool = False
    is_desktop: bool = False
    is_bot: bool = False
    url: str = ""


NO_AGENT = UserAgent()  # no User-Agent header

# uap-core family -> the name the docs use.
_NAMES = {
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
}
# Crawlers named in the public docs (`req.user_agent.name in ['ChatGPT-User',
# 'GPTBot', 'OAI-SearchBot']`) whose strings uap-core misreads.
_EXTRA = re.compile(
    r"\b(ChatGPT-User|OAI-SearchBot|GPTBot|ClaudeBot|Claude-User|Claude-SearchBot"
    r"|PerplexityBot|Perplexity-User|anthropic-ai|Google-Extended|CCBot|Bytespider)"
    r"(?:/(\d+(?:\.\d+)*))?"
)
# Automated clients uap-core does not call spiders (HTTP libraries, tools).
_AUTOMATED = re.compile(
    r"bot\b|crawl|spider|slurp|^curl/|^wget/|python-|httpx|go-http|okhttp|java/|libwww|"
    r"headlesschrome|^axios/|^node-fetch",
    re.IGNORECASE,
)
# The first product token (RFC 9110 §10.1.5), for an agent uap-core does not
# know (`python-httpx/0.27.0`); not for `Mozilla/5.0`, which names nothing.
_PRODUCT = re.compile(r"(?!Mozilla/)([A-Za-z][\w.+-]{0,63})(?:/([\w.+-]{1,32}))?(?:\s|$)")
_URL = re.compile(r"https?://[^\s;)]+")
_DESKTOP_OSES = frozenset(
    {"Windows", "Mac OS X", "macOS", "Linux", "Ubuntu", "Fedora", "Debian", "Chrome OS", "FreeBSD"}
)
_TABLETS = re.compile(r"iPad|Tablet|Kindle|Silk/|PlayBook|SM-T|SM-X|Nexus (7|9|10)", re.IGNORECASE)


@cache
def _uap() -> Any:
    """The uap-core parser, built once (it compiles ~1,300 regexes: about
    half a second, at the first parse)."""
    from ua_parser import BasicResolver, Parser, load_builtins

    matchers = load_builtins()
    resolver: Any
    try:
        from ua_parser.regex import Resolver as RegexResolver

        resolver = RegexResolver(matchers)
    except ImportError:  # no ua-parser-rs wheel: google-re2, a dependency anyway
        try:
            from ua_parser.re2 import Resolver as Re2Resolver

            resolver = Re2Resolver(matchers)
        except ImportError:
            resolver = BasicResolver(matchers)
    return Parser(resolver)


def _version(part: Any) -> str:
    if part is None:
        return ""
    pieces = [part.major, part.minor, part.patch, getattr(part, "patch_minor", None)]
    out = []
    for piece in pieces:
        if piece is None or piece == "":
            break
        out.append(str(piece))
    return ".".join(out)


def prepare() -> None:
    """Build the parser now (at policy load) rather than at the first
    request that reads a parsed field."""
    _uap()


@lru_cache(maxsize=4096)  # per distinct string: clients send the same few
def parse_user_agent(raw: str) -> UserAgent:
    if not raw:
        return NO_AGENT
    result = _uap().parse(raw[:1024])  # a longer header is not a longer browser
    agent, os, device = result.user_agent, result.os, result.device
    name = agent.family if agent is not None and agent.family != "Other" else ""
    version = _version(agent)
    extra = _EXTRA.search(raw)
    if extra is not None:
        name, version = extra.group(1), extra.group(2) or ""
    elif not name and (product := _PRODUCT.match(raw[:1024])) is not None:
        name, version = product.group(1), product.group(2) or ""  # a tool uap-core lacks
    name = _NAMES.get(name, name)
    os_name = os.family if os is not None and os.family != "Other" else ""
    device_name = device.family if device is not None and device.family != "Other" else ""
    spider = device is not None and device.family == "Spider"
    is_bot = spider or extra is not None or _AUTOMATED.search(raw) is not None
    low = raw.lower()
    is_tablet = not is_bot and (
        _TABLETS.search(raw) is not None
        or (device is not None and "tablet" in (device.brand or "").lower())
        or ("android" in low and "mobile" not in low)
    )
    is_mobile = (
        not is_bot
        and not is_tablet
        and ("mobi" in low or os_name in ("iOS", "Android") or device_name in ("iPhone", "iPod"))
    )
    url = _URL.search(raw)
    return UserAgent(
        name=name,
        version=version,
        os=os_name,
        os_version=_version(os),
        device="Spider" if spider else device_name,
        is_mobile=is_mobile,
        is_tablet=is_tablet,
        is_desktop=not (is_bot or is_mobile or is_tablet) and os_name in _DESKTOP_OSES,
        is_bot=is_bot,
        url=url.group(0) if url else "",
    )
