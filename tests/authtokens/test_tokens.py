"""The token format and its keyed hash."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeward.authtokens import tokens
from edgeward.authtokens.tokens import TokenError, TokenHasher

SECRET = bytes(range(32))


def test_format() -> None:
    token = tokens.generate()
    assert re.fullmatch(r"ewt_[a-z2-7]{16}_[A-Za-z0-9_-]{43}", token.text)
    assert len(token.text) == tokens.TOKEN_LENGTH == 64
    assert token.id == "at_" + token.text[4:20]
    assert tokens.is_id(token.id)
    assert tokens.parse(token.text) == token


def test_tokens_are_distinct() -> None:
    made = [tokens.generate() for _ in range(200)]
    assert len({t.text for t in made}) == len({t.id for t in made}) == 200


def test_repr_hides_the_secret() -> None:
    token = tokens.generate()
    assert token.text not in repr(token) and token.id in repr(token)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ewt_",
        "2abcDEF_ngrokstyle",
        "EWT_aaaaaaaaaaaaaaaa_" + "A" * 43,
        "ewt_aaaaaaaaaaaaaaaa_" + "A" * 42,
        "ewt_aaaaaaaaaaaaaaaa_" + "A" * 44,
        "ewt_aaaaaaaaaaaaaaa1_" + "A" * 43,  # '1' is not base32
        "ewt_aaaaaaaaaaaaaaaa-" + "A" * 43,
        "ewt_aaaaaaaaaaaaaaaa_" + "A" * 42 + "=",
        " ewt_aaaaaaaaaaaaaaaa_" + "A" * 43,
        "ewt_aaaaaaaaaaaaaaaa_" + "A" * 43 + "\n",
    ],
)
def test_malformed(text: str) -> None:
    with pytest.raises(TokenError) as caught:
        tokens.parse(text)
    assert text[20:] not in str(caught.value) or not text[20:]


def test_hash_is_keyed_and_verifies_in_constant_time() -> None:
    token = tokens.generate()
    hasher = TokenHasher(SECRET)
    digest = hasher.digest(token)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert hasher.verify(token, digest)
    assert TokenHasher(bytes(32)).digest(token) != digest  # another deployment's key
    other = tokens.parse(token.text[:-1] + ("A" if token.text[-1] != "A" else "B"))
    assert not hasher.verify(other, digest)
    assert token.text not in digest


@given(st.text(max_size=80))
def test_parse_accepts_exactly_the_format(text: str) -> None:
    try:
        token = tokens.parse(text)
    except TokenError:
        assert re.fullmatch(r"ewt_[a-z2-7]{16}_[A-Za-z0-9_-]{43}", text) is None
    else:
        assert token.text == text
