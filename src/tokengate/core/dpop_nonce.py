"""Stateless DPoP server nonces (RFC 9449 §8, §9). Sans-I/O.

A nonce is an HMAC of the current time window under a key every replica and worker shares, so
any of them accepts a nonce any other issued, with no per-nonce state. With a key-encryption key
(which every replica holds, and the database never does) the nonce key is derived from it
(HKDF-SHA256), so a database dump cannot forge nonces; without one it is kept in the store.

A nonce is accepted during its own window and the windows on either side (the neighbours
absorb a request crossing a boundary and clocks a little apart), so it lives between one and
three windows. The key never leaves the server; a nonce says nothing but "issued by this server
recently".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

WINDOW = 60  # seconds a nonce is current
KEY_NAME = "dpop_nonce"  # its name in the store's shared secrets
_LABEL = b"tokengate dpop nonce "
_DERIVATION_INFO = b"tokengate dpop nonce key v1"


def new_key() -> str:
    """A candidate key (hex of 32 random bytes), stored if no replica stored one first."""
    return secrets.token_hex(32)


@dataclass(frozen=True, slots=True)
class Nonces:
    """Issues and checks nonces under one shared key."""

    key: bytes
    window: int = WINDOW

    @classmethod
    def from_stored(cls, stored: str, window: int = WINDOW) -> Nonces:
        """From the shared secret's stored (hex) text; `ValueError` if it is not 32+ bytes."""
        key = bytes.fromhex(stored)
        if len(key) < 32:
            raise ValueError("the DPoP nonce key is too short")
        return cls(key, window)

    @classmethod
    def derived(cls, kek: bytes, window: int = WINDOW) -> Nonces:
        """Under a key derived from the key-encryption key (HKDF-SHA256, its own `info`): the
        same on every replica holding that KEK, and nothing of it in the database."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DERIVATION_INFO)
        return cls(hkdf.derive(kek), window)

    def current(self, now: float) -> str:
        """The nonce to hand out at `now` (`DPoP-Nonce`)."""
        return self._nonce(int(now // self.window))

    def accepts(self, nonce: str, now: float) -> bool:
        """True for a nonce of this window or either neighbour (constant-time compares)."""
        slot = int(now // self.window)
        given = nonce.encode("ascii", "replace")
        found = False
        for candidate in (slot - 1, slot, slot + 1):
            found |= hmac.compare_digest(given, self._nonce(candidate).encode("ascii"))
        return found

    def _nonce(self, slot: int) -> str:
        mac = hmac.new(self.key, _LABEL + str(slot).encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode("ascii")
