"""Decoy records: what unknown clients and tokens are checked against can never pass a check."""

from __future__ import annotations

import dataclasses

import pytest

from tests.core.records import NOW, REALM, make_client, make_token
from tokengate.core.client_auth import PresentedCredentials, authenticate_at
from tokengate.core.credentials import UNMATCHABLE_DIGEST, hash_value, verify_secret
from tokengate.core.decoys import DECOY_CLIENT, DECOY_TOKEN
from tokengate.core.errors import InvalidClient
from tokengate.core.introspection import shown
from tokengate.core.revocation import may_revoke

# Secrets an attacker might try against the decoy: its digest's text, empty, the old dummy.
GUESSES = [UNMATCHABLE_DIGEST, "", "tokengate-no-such-client", "decoy", DECOY_CLIENT.client_id]


def test_no_digest_equals_the_unmatchable_one() -> None:
    """The unmatchable digest has a SHA-256 digest's length but is not hex."""
    assert len(UNMATCHABLE_DIGEST) == len(hash_value("x"))
    assert any(c not in "0123456789abcdef" for c in UNMATCHABLE_DIGEST)


@pytest.mark.parametrize("secret", GUESSES)
def test_verify_never_matches_the_unmatchable_digest_or_none(secret: str) -> None:
    """Neither a missing digest nor the decoy's digest accepts any secret."""
    assert not verify_secret(secret, None)
    assert not verify_secret(secret, UNMATCHABLE_DIGEST)


@pytest.mark.parametrize("secret", GUESSES)
def test_unknown_client_id_never_authenticates(secret: str) -> None:
    """An unknown client (checked as the decoy) fails, even when presenting the decoy's id."""
    creds = PresentedCredentials(DECOY_CLIENT.client_id, secret, "client_secret_basic")
    with pytest.raises(InvalidClient):
        authenticate_at(creds, None, REALM, NOW)


def test_decoy_client_never_authenticates_even_if_stored() -> None:
    """Were the decoy ever returned as a stored client, it is disabled and unmatchable."""
    creds = PresentedCredentials(DECOY_CLIENT.client_id, UNMATCHABLE_DIGEST, "client_secret_basic")
    assert DECOY_CLIENT.disabled
    with pytest.raises(InvalidClient):
        authenticate_at(creds, DECOY_CLIENT, REALM, NOW)


@pytest.mark.parametrize("now", [0, 1, NOW, 2**40], ids=["epoch", "one", "now", "far"])
def test_decoy_token_is_never_shown(now: int) -> None:
    """The decoy token is never active, whoever asks (even a caller of its audience)."""
    caller = make_client(audiences=DECOY_TOKEN.audiences, can_introspect=True)
    assert not DECOY_TOKEN.is_active(now)
    assert not shown(DECOY_TOKEN, caller, now)


def test_decoy_token_is_never_revocable() -> None:
    """An unknown token (None, checked as the decoy) is never revoked, even by the decoy's
    client id; the decoy itself neither."""
    caller = dataclasses.replace(make_client(), client_id=DECOY_TOKEN.client_id)
    assert not may_revoke(None, caller)
    assert not may_revoke(DECOY_TOKEN, caller)
    assert may_revoke(make_token(), make_client())  # the real path still works


def test_shown_needs_active_and_visible() -> None:
    """`shown` is active and visible, both evaluated."""
    caller = make_client(audiences=("https://a.example",))
    assert shown(make_token(), caller, NOW)
    assert not shown(make_token(audiences=("https://b.example",)), caller, NOW)
    assert not shown(make_token(revoked_at=NOW), caller, NOW)
