"""Signing-key rotation (RFC 9701 responses) and the key list, for the CLI: the same rules
every replica applies (`core.signing_keys`), written to the shared store."""

from __future__ import annotations

from typing import Any

from tokengate.core import key_sealing, signing_keys
from tokengate.core.audit import Action, entry
from tokengate.core.signing_keys import SigningKey
from tokengate.storage.base import SigningKeyStore

Document = dict[str, Any]


async def rotate(
    store: SigningKeyStore,
    kek: bytes,
    now: int,
    actor: str,
    *,
    grace: int = signing_keys.DEFAULT_GRACE,
    delay: int = signing_keys.DEFAULT_PUBLICATION_DELAY,
    alg: str = signing_keys.DEFAULT_ALG,
) -> SigningKey:
    """Add a key published now and signing after `delay`; the keys it replaces leave the JWKS
    `grace` seconds after that. `KeyUnusable` when `kek` does not open the current key: a key
    sealed under another KEK would be one the replicas cannot use."""
    stored = await store.signing_keys()
    current = signing_keys.signing_key(stored, now)
    if current is not None:
        key_sealing.unseal(kek, current.kid, current.sealed_private)
    # The new key activates after every stored one (a tie would be broken by random kids).
    delay = max([delay, *(k.active_at - now + 1 for k in stored)])
    key = key_sealing.generate(kek, now, alg=alg, delay=delay)
    retire_at = signing_keys.retire_at(now, delay, grace)
    audit = entry(
        Action.SIGNING_KEY_ROTATED, actor, now, target=key.kid,
        alg=alg, active_at=key.active_at, replaced_retire_at=retire_at,
    )  # fmt: skip
    await store.rotate_signing_key(key, retire_at, audit=audit)
    return key


def key_views(keys: list[SigningKey], now: float) -> list[Document]:
    """Each key's public facts and state, in activation order: pending, signing, published
    (replaced, still in the JWKS) or retired. Never the private half, sealed or not."""
    current = signing_keys.signing_key(keys, now)
    return [_view(k, now, current) for k in sorted(keys, key=lambda k: (k.active_at, k.kid))]


def _view(key: SigningKey, now: float, current: SigningKey | None) -> Document:
    if current is not None and key.kid == current.kid:
        state = "signing"
    elif not key.published(now):
        state = "retired"
    elif key.active_at > now:
        state = "pending"
    else:
        state = "published"
    return {
        "kid": key.kid, "alg": key.alg, "state": state, "created_at": key.created_at,
        "active_at": key.active_at, "retire_at": key.retire_at,
    }  # fmt: skip
