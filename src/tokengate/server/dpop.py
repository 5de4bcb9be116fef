"""DPoP at the token endpoint (RFC 9449 §5, §8): verify the proof, refuse replays, nonces.

The proof's `htu` must be the token endpoint as the metadata advertises it (the issuer's URL,
whatever proxy sits in front). A proof's `jti` goes in the store's replay table, shared by
every replica, until no proof with its `iat` could still be accepted. With nonces on, the
nonce key comes from the store's shared secrets (`core.dpop_nonce`): every replica and worker
accepts the nonces of every other. Every DPoP answer then carries a fresh `DPoP-Nonce`.
"""

from __future__ import annotations

from collections.abc import Callable

from tokengate.core import dpop
from tokengate.core.dpop_nonce import KEY_NAME, Nonces, new_key
from tokengate.core.errors import InvalidDpopProof, UseDpopNonce
from tokengate.core.responses import Headers
from tokengate.core.wire import TOKEN_PATH
from tokengate.storage.base import Store

Clock = Callable[[], float]


class DpopGate:
    """The token endpoint's DPoP checks, for one store and one issuer."""

    def __init__(
        self, store: Store, issuer: str, clock: Clock, *, nonces: bool, kek: bytes | None = None
    ) -> None:
        self.store = store
        self.url = issuer.rstrip("/") + TOKEN_PATH
        self.clock = clock
        self.nonces_required = nonces
        self._nonces: Nonces | None = None if kek is None else Nonces.derived(kek)

    async def verified(self, proof: str | None, *, required: bool) -> dpop.VerifiedProof:
        """The request's proof, checked; `required`: the client is DPoP-bound (RFC 9449 §5.2)."""
        now = self.clock()
        nonces = await self._nonce_source() if self.nonces_required else None
        extra = {} if nonces is None else {dpop.NONCE_HEADER: nonces.current(now)}
        if proof is None:
            why = "this client must send a DPoP proof" if required else "missing DPoP proof"
            raise InvalidDpopProof(why, headers=extra)
        accept = None if nonces is None else (lambda value: nonces.accepts(value, now))
        try:
            return dpop.verify_proof(proof, method="POST", url=self.url, now=now, nonce=accept)
        except dpop.NonceRequired as exc:
            raise UseDpopNonce(str(exc), headers=extra) from None
        except dpop.ProofRefused as exc:
            raise InvalidDpopProof(str(exc), headers=extra) from None

    async def use(self, proof: dpop.VerifiedProof) -> None:
        """Record the proof's `jti` (RFC 9449 §11.1); a replay is `invalid_dpop_proof`."""
        if not await self.store.use_assertion(
            dpop.replay_key(proof.jkt, proof.jti), proof.replay_until
        ):
            raise InvalidDpopProof("the DPoP proof was already used", headers=await self._extra())

    async def response_headers(self) -> Headers:
        """The headers of a successful DPoP answer: a fresh nonce when nonces are on."""
        return tuple((k.lower().encode(), v.encode()) for k, v in (await self._extra()).items())

    async def _extra(self) -> dict[str, str]:
        if not self.nonces_required:
            return {}
        return {dpop.NONCE_HEADER: (await self._nonce_source()).current(self.clock())}

    async def _nonce_source(self) -> Nonces:
        """The nonce key: derived from the KEK at start, or read (or created) in the store once
        per process; fails closed: a storage error is an outage (503), never a request served
        without the nonce check."""
        if self._nonces is None:
            stored = await self.store.shared_secret(KEY_NAME, new_key(), int(self.clock()))
            self._nonces = Nonces.from_stored(stored)
        return self._nonces
