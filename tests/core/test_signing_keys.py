"""Signing keys: sealing under the KEK, and rotation by time (RFC 9701 §5 keys)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tokengate.core import key_sealing, signing_keys
from tokengate.core.key_sealing import KeyUnusable

KEK = key_sealing.parse_kek(key_sealing.new_kek())


def test_kek_forms() -> None:
    """A KEK is 32 bytes written as base64url or hex; anything else is refused."""
    raw = bytes(range(32))
    assert key_sealing.parse_kek(raw.hex()) == raw
    written = key_sealing.new_kek()
    assert len(key_sealing.parse_kek(written + "\n")) == 32
    for bad in ("", "short", "00" * 16, "zz" * 32):
        with pytest.raises(ValueError, match="32 bytes"):
            key_sealing.parse_kek(bad)


def test_seal_round_trip_and_binding() -> None:
    """Only the sealing KEK opens it, and only under the kid it was sealed for."""
    sealed = key_sealing.seal(KEK, "kid-1", b"secret")
    assert b"secret" not in sealed.encode()
    assert key_sealing.unseal(KEK, "kid-1", sealed) == b"secret"
    other = key_sealing.parse_kek(key_sealing.new_kek())
    for kek, kid, text in ((other, "kid-1", sealed), (KEK, "kid-2", sealed), (KEK, "kid-1", "x")):
        with pytest.raises(KeyUnusable):
            key_sealing.unseal(kek, kid, text)


@pytest.mark.parametrize("alg", signing_keys.ALGORITHMS)
def test_generated_key_publishes_public_members_only(alg: str) -> None:
    """The stored public JWK has kid (its RFC 7638 thumbprint), alg, use and no private part."""
    key = key_sealing.generate(KEK, 100, alg=alg, delay=10)
    public = json.loads(key.public_jwk)
    assert (public["kid"], public["alg"], public["use"]) == (key.kid, alg, "sig")
    assert not {"d", "p", "q", "dp", "dq", "qi"} & public.keys()
    assert key.kid == key_sealing.thumbprint(public)
    assert (key.created_at, key.active_at, key.retire_at) == (100, 110, None)
    private = json.loads(key_sealing.unseal(KEK, key.kid, key.sealed_private))
    assert "d" in private
    assert private["d"] not in key.sealed_private


def test_rotation_by_time() -> None:
    """Published before use; the newest active key signs; the old one leaves after grace."""
    old = signing_keys.SigningKey("old", "RS256", '{"kid":"old"}', "", 0, 0)
    new = signing_keys.SigningKey("new", "ES256", '{"kid":"new"}', "", 100, 100 + 600)
    old = dataclasses.replace(old, retire_at=signing_keys.retire_at(100, 600, 3600))
    keys = [old, new]
    at = {t: signing_keys.signing_key(keys, t) for t in (100, 699, 700, 4299, 4300)}
    assert [None if k is None else k.kid for k in at.values()] == [
        "old",
        "old",
        "new",
        "new",
        "new",
    ]
    assert signing_keys.jwks_document(keys, 150) == {"keys": [{"kid": "old"}, {"kid": "new"}]}
    assert signing_keys.jwks_document(keys, 4300) == {"keys": [{"kid": "new"}]}
    assert signing_keys.algorithms(keys, 150) == ["ES256", "RS256"]
    assert signing_keys.signing_key([], 0) is None
