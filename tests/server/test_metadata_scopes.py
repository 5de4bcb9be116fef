"""The metadata's `scopes_supported` is read from the store at most once a second, shared by
concurrent requests, and read again at once after a client event."""

from __future__ import annotations

import asyncio

import pytest

from tests.server.conftest import FakeClock
from tokengate.core.models import Client, EventKind, RevocationEvent
from tokengate.server.metadata_scopes import ScopesSupported
from tokengate.storage.memory import MemoryStore

pytestmark = pytest.mark.anyio


class CountingStore(MemoryStore):
    """A memory store counting `client_scopes` reads; `gate` holds a read until set."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()

    async def client_scopes(self) -> frozenset[str]:
        self.reads += 1
        self.entered.set()
        await self.gate.wait()
        return await super().client_scopes()


def _client(client_id: str, *scopes: str) -> Client:
    return Client(client_id=client_id, name=client_id, secret_hash="h", scopes=frozenset(scopes))


@pytest.fixture
def store() -> CountingStore:
    return CountingStore()


async def test_one_read_per_second_whatever_the_requests(store: CountingStore) -> None:
    """Within the second the answer is kept (one read for many requests); after it, read again
    and a new client's scope is in."""
    clock = FakeClock()
    scopes = ScopesSupported(store, clock)
    await store.add_client(_client("a", "write", "read"))
    assert [await scopes.get() for _ in range(50)][-1] == ["read", "write"]
    assert store.reads == 1
    await store.add_client(_client("b", "admin"))
    clock.now += 0.999
    assert await scopes.get() == ["read", "write"]
    clock.now += 0.001
    assert await scopes.get() == ["admin", "read", "write"]
    assert store.reads == 2


async def test_concurrent_requests_share_one_read(store: CountingStore) -> None:
    """Requests arriving while the store is being read wait for that read, not one each."""
    await store.add_client(_client("a", "read"))
    scopes = ScopesSupported(store, FakeClock())
    store.gate.clear()
    waiting = [asyncio.ensure_future(scopes.get()) for _ in range(20)]
    await asyncio.sleep(0)
    store.gate.set()
    assert await asyncio.gather(*waiting) == [["read"]] * 20
    assert store.reads == 1


@pytest.mark.parametrize(
    "kind", [EventKind.CLIENT_UPDATED, EventKind.CLIENT_DISABLED, EventKind.CLIENT_DELETED]
)
async def test_a_client_event_drops_the_kept_answer(store: CountingStore, kind: EventKind) -> None:
    """A client changed on any replica (its event) is reflected on the next request."""
    scopes = ScopesSupported(store, FakeClock())
    await store.add_client(_client("a", "read", "write"))
    assert await scopes.get() == ["read", "write"]
    await store.delete_client("a", 0)
    scopes.on_events([RevocationEvent(1, kind, "a")])
    assert await scopes.get() == []


async def test_a_token_revocation_keeps_the_answer(store: CountingStore) -> None:
    """Token events do not change any client's scopes: no read."""
    scopes = ScopesSupported(store, FakeClock())
    await scopes.get()
    scopes.on_events([RevocationEvent(1, EventKind.TOKEN_REVOKED, "a")])
    await scopes.get()
    assert store.reads == 1


async def test_a_read_begun_before_a_change_is_not_kept(store: CountingStore) -> None:
    """An event arriving while a read is in flight: that read's answer is not kept, and a
    request after the event reads again."""
    scopes = ScopesSupported(store, FakeClock())
    await store.add_client(_client("a", "read"))
    store.gate.clear()
    early = asyncio.ensure_future(scopes.get())
    await store.entered.wait()  # the read has reached the store
    scopes.on_events([RevocationEvent(1, EventKind.CLIENT_UPDATED, "a")])
    store.gate.set()
    assert await early == ["read"]
    await scopes.get()
    assert store.reads == 2


async def test_the_clock_stepping_back_ends_the_kept_answer(store: CountingStore) -> None:
    """A wall clock set back does not stretch the second into longer."""
    clock = FakeClock()
    scopes = ScopesSupported(store, clock)
    await scopes.get()
    clock.now -= 3600
    await scopes.get()
    assert store.reads == 2


async def test_a_failed_read_is_the_requests_error_and_is_not_kept(
    store: CountingStore,
) -> None:
    """A storage error reaches the waiting request (the endpoint's 503), and the next request
    reads again."""
    scopes = ScopesSupported(store, FakeClock())
    broken = True

    async def flaky() -> frozenset[str]:
        if broken:
            raise ConnectionError("down")
        return frozenset({"read"})

    store.client_scopes = flaky  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await scopes.get()
    broken = False
    assert await scopes.get() == ["read"]
