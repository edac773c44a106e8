"""`req.user_agent.*`: uap-core's parse with the names the docs use."""

from __future__ import annotations

import pytest

from edgeward.policy.useragent import NO_AGENT, parse_user_agent

CASES = [
    # (User-Agent, name, version, os, os_version, mobile, tablet, desktop, bot)
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
        ("Edge", "120.0.2210.91", "Windows", "10", False, False, True, False),
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/120.0.0.0 Safari/537.36",
        ("Chrome", "120.0.0.0", "Mac OS X", "10.15.7", False, False, True, False),
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        ("Firefox", "121.0", "Linux", "", False, False, True, False),
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
        " Version/17.2 Safari/605.1.15",
        ("Safari", "17.2", "Mac OS X", "10.15.7", False, False, True, False),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15"
        " (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
        ("Safari", "17.2", "iOS", "17.2", True, False, False, False),
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/120.0.6099.144 Mobile Safari/537.36",
        ("Chrome", "120.0.6099.144", "Android", "14", True, False, False, False),
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
        " Version/17.2 Mobile/15E148 Safari/604.1",
        ("Safari", "17.2", "iOS", "17.2", False, True, False, False),
    ),
    (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        ("Googlebot", "2.1", "", "", False, False, False, True),
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2;"
        " +https://openai.com/gptbot)",
        ("GPTBot", "1.2", "", "", False, False, False, True),
    ),
    ("curl/8.5.0", ("curl", "8.5.0", "", "", False, False, False, True)),
    ("python-requests/2.31.0", ("Python Requests", "2.31", "", "", False, False, False, True)),
    # Not in uap-core: the first product token.
    ("python-httpx/0.27.0", ("python-httpx", "0.27.0", "", "", False, False, False, True)),
]


@pytest.mark.parametrize(("raw", "expected"), CASES, ids=[c[1][0] for c in CASES])
def test_names_versions_and_kinds(raw: str, expected: tuple[object, ...]) -> None:
    agent = parse_user_agent(raw)
    got = (
        agent.name,
        agent.version,
        agent.os,
        agent.os_version,
        agent.is_mobile,
        agent.is_tablet,
        agent.is_desktop,
        agent.is_bot,
    )
    assert got == expected


def test_the_url_and_the_empty_agent() -> None:
    assert parse_user_agent(CASES[7][0]).url == "http://www.google.com/bot.html"
    assert parse_user_agent("") is NO_AGENT and NO_AGENT.name == "" and not NO_AGENT.is_bot
    assert parse_user_agent("x" * 100_000).name == ""  # bounded: a long header parses fast
