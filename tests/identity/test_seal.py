"""Sealed cookies and tickets: round trips, and any change refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeward.identity.seal import (
    KeyFileError,
    Keyring,
    SealError,
    SealKey,
    b64d,
    b64e,
    load_keys,
    new_key_set,
)

KEYRING = Keyring([SealKey("k1", b"\x01" * 32)])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
payloads = st.dictionaries(
    st.text(max_size=10).filter(lambda k: k != "exp"), json_values, max_size=6
)


@given(payloads, st.sampled_from(["session", "tx", "ticket"]))
def test_round_trip(payload: dict[str, object], purpose: str) -> None:
    sealed = KEYRING.seal(purpose, {**payload, "exp": 2_000})
    assert KEYRING.unseal(purpose, sealed, 1_000) == {**payload, "exp": 2_000}


@given(payloads, st.data())
def test_any_changed_byte_is_refused(payload: dict[str, object], data: st.DataObject) -> None:
    sealed = KEYRING.seal("session", {**payload, "exp": 2_000})
    raw = bytearray(b64d(sealed))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(SealError):
        KEYRING.unseal("session", b64e(bytes(raw)), 1_000)


@given(payloads, st.data())
def test_truncated_or_extended_is_refused(payload: dict[str, object], data: st.DataObject) -> None:
    sealed = KEYRING.seal("session", {**payload, "exp": 2_000})
    raw = b64d(sealed)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(SealError):
        KEYRING.unseal("session", b64e(raw[:cut]), 1_000)
    with pytest.raises(SealError):
        KEYRING.unseal("session", b64e(raw + data.draw(st.binary(min_size=1, max_size=8))), 1_000)


def test_purpose_expiry_and_rotation() -> None:
    sealed = KEYRING.seal("ticket", {"exp": 100})
    with pytest.raises(SealError, match="another purpose"):
        KEYRING.unseal("session", sealed, 0)
    with pytest.raises(SealError, match="expired"):
        KEYRING.unseal("ticket", sealed, 100)
    rotated = Keyring([SealKey("k2", b"\x02" * 32), SealKey("k1", b"\x01" * 32)])
    assert rotated.unseal("ticket", sealed, 0) == {"exp": 100}  # old key still opens
    assert rotated.kid == "k2"
    new = rotated.seal("ticket", {"exp": 100})
    with pytest.raises(SealError, match="unknown key"):
        KEYRING.unseal("ticket", new, 0)  # an edge without k2


def test_keys_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(new_key_set("2026-01")))
    assert load_keys(path).kid == "2026-01"
    for content, message in [
        ("not json", "not JSON"),
        ("{}", "JWK set"),
        ('{"keys": []}', "no keys"),
        ('{"keys": [{"kty": "RSA"}]}', "oct"),
        ('{"keys": [{"kty": "oct", "kid": "a b", "k": ""}]}', "kid"),
        ('{"keys": [{"kty": "oct", "kid": "a", "k": "c2hvcnQ"}]}', "32 random bytes"),
    ]:
        path.write_text(content)
        with pytest.raises(KeyFileError, match=message):
            load_keys(path)
    two = {"keys": [new_key_set("a")["keys"][0], new_key_set("a")["keys"][0]]}
    path.write_text(json.dumps(two))
    with pytest.raises(KeyFileError, match="same kid"):
        load_keys(path)
