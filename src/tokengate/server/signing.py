"""This replica's view of the signing keys (RFC 9701 §5): read from the store, private halves
opened with the key-encryption key, refreshed on a schedule.

Every replica reads the same rows and picks the signing key by time (`core.signing_keys`), so
replicas agree without talking to each other: a rotation's new key is published at once and
signs only after its publication delay, longer than `refresh_interval`, by when every replica
has read it. The first start creates a key when none is stored (`ensure`), once however many
replicas race (`SigningKeyStore.add_first_signing_key`).

Fail closed: a stored key this KEK cannot open is never used (logged; a start whose signing
key cannot be opened fails, naming the cause), and with no usable key a request for a signed
answer is 503 `temporarily_unavailable`, never an unsigned JWT or a fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from joserfc.jwk import Key, import_key

from tokengate.core import key_sealing, signing_keys
from tokengate.core.audit import SERVER_ACTOR, Action, entry
from tokengate.core.errors import TemporarilyUnavailable
from tokengate.core.signing_keys import SigningKey
from tokengate.management import keys as key_service
from tokengate.management.journal import record
from tokengate.storage.base import Store

log = logging.getLogger("tokengate.server")
REFRESH_INTERVAL = 30.0


class KeyRing:
    """The signing keys as this process last read them, with their opened private keys."""

    def __init__(
        self,
        store: Store,
        kek: bytes,
        clock: Callable[[], float] = time.time,
        refresh_interval: float = REFRESH_INTERVAL,
    ) -> None:
        self._store = store
        self._kek = kek
        self._clock = clock
        self._interval = refresh_interval
        self._keys: list[SigningKey] = []
        self._private: dict[str, Key] = {}
        self._unusable: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Create the first key if none is stored, load the set, then refresh it forever."""
        await self.ensure()
        self._task = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def stop(self) -> None:
        """Stop refreshing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def ensure(self) -> None:
        """A usable signing key exists and is loaded; `KeyUnusable` when the stored one cannot
        be opened with this KEK (a misconfigured replica must not start signing)."""
        if not any(k.retire_at is None for k in await self._store.signing_keys()):
            now = int(self._clock())
            key = key_sealing.generate(self._kek, now)
            if await self._store.add_first_signing_key(key):
                created = entry(Action.SIGNING_KEY_CREATED, SERVER_ACTOR, now, target=key.kid)
                await record(self._store, created)
        await self.refresh()
        current = signing_keys.signing_key(self._keys, self._clock())
        if current is not None and current.kid in self._unusable:
            raise key_sealing.KeyUnusable(
                f"signing key {current.kid} does not open with this key-encryption key"
                " (every replica must be given the same one)"
            )

    async def refresh(self) -> None:
        """Read the key set again; open the private halves not seen before."""
        keys = await self._store.signing_keys()
        for key in keys:
            if key.kid not in self._private and key.kid not in self._unusable:
                self._open(key)
        kids = {k.kid for k in keys}
        self._private = {kid: k for kid, k in self._private.items() if kid in kids}
        self._keys = keys

    def _open(self, key: SigningKey) -> None:
        try:
            plain = key_sealing.unseal(self._kek, key.kid, key.sealed_private)
            self._private[key.kid] = import_key(json.loads(plain))
        except key_sealing.KeyUnusable as exc:
            self._unusable.add(key.kid)
            log.error("%s", exc)  # noqa: TRY400 (the message names the cause; no traceback)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh()
            except Exception:  # kept: the set read last; retried next interval
                log.warning("could not read the signing keys", exc_info=True)

    async def rotate(self, actor: str, *, grace: int, delay: int, alg: str) -> SigningKey:
        """`management.keys.rotate` with this server's KEK; this replica sees the key at once."""
        now = int(self._clock())
        key = await key_service.rotate(
            self._store, self._kek, now, actor, grace=grace, delay=delay, alg=alg
        )
        await self.refresh()
        return key

    def views(self) -> list[dict[str, Any]]:
        """`management.keys.key_views` of the set as last read."""
        return key_service.key_views(self._keys, self._clock())

    def signer(self, now: float) -> tuple[SigningKey, Key]:
        """The key that signs now and its private half; 503 when there is none usable."""
        key = signing_keys.signing_key(self._keys, now)
        private = None if key is None else self._private.get(key.kid)
        if key is None or private is None:
            raise TemporarilyUnavailable("no usable signing key", headers={"Retry-After": "30"})
        return key, private

    def jwks(self, now: float) -> dict[str, Any]:
        """The published public keys (RFC 7517 §5)."""
        return signing_keys.jwks_document(self._keys, now)

    def algorithms(self, now: float) -> list[str]:
        """RFC 9701 §7 `introspection_signing_alg_values_supported`."""
        return signing_keys.algorithms(self._keys, now)
