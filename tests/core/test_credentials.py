"""Token and secret generation, format checks, hashing (RFC 6749 §10.10)."""

from __future__ import annotations

import base64

import pytest

from tokengate.core import credentials as c


def test_access_token_shape_and_entropy() -> None:
    """Tokens carry a prefix, 256 random bits and a checksum."""
    token = c.new_access_token()
    assert token.startswith("tgat_")
    body = token[len("tgat_") : -8]
    assert len(base64.urlsafe_b64decode(body + "=")) == 32
    assert c.is_access_token_format(token)


def test_a_token_and_its_jti_from_one_read_are_well_formed_and_unrelated() -> None:
    """The token endpoint's pair: a well-formed token (256 bits) and a 128-bit hex jti that
    shares no bytes with it; fresh on every call."""
    pairs = [c.new_access_token_and_jti() for _ in range(100)]
    for token, jti in pairs:
        assert c.is_access_token_format(token)
        entropy = base64.urlsafe_b64decode(token[len("tgat_") : -8] + "=")
        assert len(entropy) == 32
        assert len(jti) == 32
        assert int(jti, 16) >= 0
        assert bytes.fromhex(jti) not in entropy
    assert len({t for t, _ in pairs}) == len({j for _, j in pairs}) == len(pairs)


def test_checksum_rejects_lookalikes() -> None:
    """A single changed character fails the CRC32 check."""
    token = c.new_access_token()
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    assert not c.is_access_token_format(flipped)
    assert not c.is_access_token_format(token + "x")
    assert not c.is_access_token_format(c.new_client_secret())


def test_secret_verification_is_exact() -> None:
    """The right secret verifies; a wrong one or an unknown client never does."""
    secret = c.new_client_secret()
    stored = c.hash_value(secret)
    assert c.verify_secret(secret, stored)
    assert not c.verify_secret(secret[:-1], stored)
    assert not c.verify_secret(secret, None)


@pytest.mark.parametrize("make", [c.new_access_token, c.new_client_secret])
def test_hash_does_not_contain_value(make: object) -> None:
    """Stored form is a 64-hex SHA-256 digest."""
    assert callable(make)
    value = make()
    digest = c.hash_value(value)
    assert len(digest) == 64
    assert value not in digest
