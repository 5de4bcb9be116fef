"""The signing-key store (RFC 9701 §5 keys), on every backend."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import pytest

from tokengate.core.audit import CLI_ACTOR, Action, entry
from tokengate.core.signing_keys import SigningKey
from tokengate.storage.base import Store

pytestmark = pytest.mark.anyio

MakeStore = Callable[[], Store]
NOW = 1_700_000_000


def key(kid: str, created_at: int = NOW, active_at: int | None = None) -> SigningKey:
    """A stored key with every field set (the sealed text is opaque to the store)."""
    return SigningKey(
        kid, "RS256", f'{{"kid":"{kid}"}}', f"v1.sealed-{kid}", created_at,
        created_at if active_at is None else active_at,
    )  # fmt: skip


async def test_first_key_once(store: Store) -> None:
    """The first start's key is written once; a second is refused while it is unretired."""
    assert await store.signing_keys() == []
    assert await store.add_first_signing_key(key("a"))
    assert not await store.add_first_signing_key(key("b"))
    assert await store.signing_keys() == [key("a")]


async def test_rotate_retires_and_drops(store: Store) -> None:
    """Rotation retires the unretired keys, drops long-retired ones, inserts and audits."""
    await store.add_first_signing_key(key("a"))
    audit = entry(Action.SIGNING_KEY_ROTATED, CLI_ACTOR, NOW + 10, target="b")
    assert await store.rotate_signing_key(key("b", NOW + 10, NOW + 610), NOW + 4210, audit=audit)
    found = await store.signing_keys()
    assert found == [
        dataclasses.replace(key("a"), retire_at=NOW + 4210),
        key("b", NOW + 10, NOW + 610),
    ]
    assert [e.action for e in await store.audit_after()] == [Action.SIGNING_KEY_ROTATED]
    # Past a's retirement, the next rotation forgets it.
    await store.rotate_signing_key(key("c", NOW + 5000), NOW + 9000)
    assert [k.kid for k in await store.signing_keys()] == ["b", "c"]
    assert not await store.add_first_signing_key(key("d"))
    with pytest.raises(ValueError, match="signing key"):
        await store.rotate_signing_key(key("c", NOW + 6000), NOW + 9000)


async def test_first_key_race(make_durable: MakeStore) -> None:
    """Replicas racing at their first start store exactly one key."""
    stores = [make_durable() for _ in range(4)]
    for s in stores:
        await s.open()
    try:
        won = await asyncio.gather(
            *(s.add_first_signing_key(key(f"k{i}")) for i, s in enumerate(stores))
        )
        assert sum(won) == 1
        assert len(await stores[0].signing_keys()) == 1
    finally:
        for s in stores:
            await s.close()
