"""The authorization server's own signing keys (RFC 9701 §5 responses, RFC 7517 JWKS). Sans-I/O.

A key is stored as its public JWK and its private JWK *sealed* (`key_sealing`): a database
dump can sign nothing.

Rotation is by time, so every replica that holds the same key set makes the same choice:
a key is *published* (in the JWKS) from its creation until `retire_at`, and *signs* from
`active_at` on; of the keys that may sign, the one activated last does. A rotation gives the
new key an `active_at` after a publication delay (resource servers caching the JWKS see it
before it is used) and the keys it replaces a `retire_at` one grace period after that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# RS256 by default: RFC 9701 §6 makes it the default `introspection_signed_response_alg`, what a
# resource server registered without that member expects. ES256 is offered for smaller, cheaper
# signatures where every resource server reads the metadata's algorithm list.
DEFAULT_ALG = "RS256"
ALGORITHMS = ("RS256", "ES256")
DEFAULT_PUBLICATION_DELAY = 600  # seconds: > a resource server's JWKS cache (max-age below)
DEFAULT_GRACE = 3600  # seconds a replaced key stays published after its successor signs
JWKS_MAX_AGE = 300  # Cache-Control max-age of the JWKS document


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One stored signing key; field order is the `signing_keys` table's column order."""

    kid: str
    alg: str
    public_jwk: str  # JSON: the public JWK with `kid`, `alg`, `use: sig`
    sealed_private: str  # `seal`ed private JWK JSON
    created_at: int
    active_at: int
    retire_at: int | None = None

    def published(self, now: float) -> bool:
        """In the JWKS: from creation until retired."""
        return self.retire_at is None or now < self.retire_at

    def may_sign(self, now: float) -> bool:
        """Active and not retired."""
        return self.active_at <= now and self.published(now)


def signing_key(keys: list[SigningKey], now: float) -> SigningKey | None:
    """The key that signs at `now`: of those that may, the one activated last (then by kid)."""
    usable = [k for k in keys if k.may_sign(now)]
    return max(usable, key=lambda k: (k.active_at, k.kid), default=None)


def jwks_document(keys: list[SigningKey], now: float) -> dict[str, Any]:
    """RFC 7517 §5 JWK Set of every published key: public members only."""
    published = sorted((k for k in keys if k.published(now)), key=lambda k: (k.active_at, k.kid))
    return {"keys": [json.loads(k.public_jwk) for k in published]}


def algorithms(keys: list[SigningKey], now: float) -> list[str]:
    """RFC 9701 §7 `introspection_signing_alg_values_supported`: the published keys' algs."""
    return sorted({k.alg for k in keys if k.published(now)}) or [DEFAULT_ALG]


def retire_at(now: int, delay: int, grace: int) -> int:
    """When the keys a rotation replaces leave the JWKS: `grace` after the new key signs."""
    return now + delay + grace
