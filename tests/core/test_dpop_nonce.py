"""Stateless DPoP nonces (RFC 9449 §8): windows, neighbours, and the key they are made under."""

from __future__ import annotations

import pytest

from tokengate.core.dpop_nonce import WINDOW, Nonces, new_key

NOW = 1_700_000_000.0
KEK = bytes(range(32))


def test_a_nonce_lives_in_its_window_and_either_neighbour() -> None:
    """Accepted one window before and after the one it was issued in, not two."""
    nonces = Nonces.from_stored(new_key())
    nonce = nonces.current(NOW)
    assert nonces.accepts(nonce, NOW)
    assert nonces.accepts(nonce, NOW + WINDOW)
    assert nonces.accepts(nonce, NOW - WINDOW)
    assert not nonces.accepts(nonce, NOW + 2 * WINDOW)
    assert not nonces.accepts(nonce, NOW - 2 * WINDOW)
    assert not nonces.accepts("", NOW)
    assert not nonces.accepts("é" * 24, NOW)


def test_a_key_from_the_store_must_be_32_bytes() -> None:
    """A stored key shorter than 32 bytes, or not hex, is refused (fail closed)."""
    with pytest.raises(ValueError, match="too short"):
        Nonces.from_stored("00" * 31)
    with pytest.raises(ValueError, match="non-hexadecimal"):
        Nonces.from_stored("not hex")


def test_the_derived_key_is_the_same_for_one_kek_and_is_not_the_kek() -> None:
    """Replicas holding one KEK derive one nonce key (each accepts the other's nonces); another
    KEK gives another; the KEK itself is never the HMAC key."""
    one, again, other = Nonces.derived(KEK), Nonces.derived(KEK), Nonces.derived(b"\x01" * 32)
    assert one.key == again.key
    assert len(one.key) == 32
    assert one.key != KEK
    assert other.key != one.key
    assert again.accepts(one.current(NOW), NOW)
    assert not other.accepts(one.current(NOW), NOW)
