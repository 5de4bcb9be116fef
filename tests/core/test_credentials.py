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
