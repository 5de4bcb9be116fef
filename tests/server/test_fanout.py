"""The event fan-out: one store read and one encoding per event for every stream of a process,
bounded queues that drop a stream falling behind, the stream cap, heartbeats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.core.records import make_client
from tokengate.core.models import RevocationEvent
from tokengate.server.events import EventHub
from tokengate.server.fanout import HEARTBEAT, Fanout, StreamsFull, Subscription
from tokengate.storage.memory import MemoryStore

pytestmark = pytest.mark.anyio


class CountingStore(MemoryStore):
    """A memory store that counts `events_after` reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def events_after(self, position: int, limit: int = 1000) -> list[RevocationEvent]:
        self.reads += 1
        return await super().events_after(position, limit)


async def disable(store: MemoryStore, client_id: str) -> None:
    """Append one `client_disabled` event."""
    await store.add_client(make_client(client_id=client_id))
    await store.disable_client(client_id, at=1_700_000_000)


@pytest.fixture
async def hub() -> AsyncIterator[EventHub]:
    """A hub over a counting memory store, not polling on its own (tests call `sync`)."""
    hub = EventHub(CountingStore(), poll_interval=3600, fanout=Fanout(max_streams=5_000))
    yield hub
    await hub.fanout.stop()


async def test_one_read_and_one_encoding_for_every_stream(hub: EventHub) -> None:
    """1,000 streams, one event: one `events_after` call, the same bytes object queued for all."""
    store = hub.store
    assert isinstance(store, CountingStore)
    subscriptions = [hub.subscribe() for _ in range(1_000)]
    await disable(store, "tgc_gone")
    await hub.sync()
    assert store.reads == 1
    chunks = [await s.take() for s in subscriptions]
    assert chunks[0] is not None
    assert b'"client_id":"tgc_gone"' in chunks[0]
    assert all(chunk is chunks[0] for chunk in chunks)
    assert {s.head for s in subscriptions} == {0}
    assert hub.position == 1


async def test_a_subscription_holds_exactly_the_events_after_its_head(hub: EventHub) -> None:
    """Subscribed at position 1: the queue holds event 2 only (event 1 is the store's to replay)."""
    await disable(hub.store, "tgc_one")  # type: ignore[arg-type]
    await hub.sync()
    late = hub.subscribe()
    await disable(hub.store, "tgc_two")  # type: ignore[arg-type]
    await hub.sync()
    chunk = await late.take()
    assert late.head == 1
    assert chunk is not None
    assert b"id: 2\n" in chunk
    assert b"id: 1\n" not in chunk


async def test_a_stream_that_falls_behind_is_dropped() -> None:
    """Past `queue_bytes` unsent: the stream's task is cancelled and it leaves the fan-out."""
    fanout = Fanout(queue_bytes=100)

    async def blocked_stream(ready: asyncio.Future[Subscription]) -> None:
        ready.set_result(fanout.subscribe(0))
        await asyncio.Event().wait()  # a peer that never reads: the write never completes

    ready: asyncio.Future[Subscription] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(blocked_stream(ready))
    slow = await ready
    keeping_up = fanout.subscribe(0)
    fanout.publish(b"x" * 60)
    assert not slow.dropped
    assert await keeping_up.take() == b"x" * 60
    fanout.publish(b"y" * 60)
    assert slow.dropped
    assert fanout.dropped == 1
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(fanout) == 1  # the one that kept up stays
    assert await keeping_up.take() == b"y" * 60


async def test_the_cap_refuses_subscriptions_beyond_it() -> None:
    """At `max_streams` streams a new subscription raises `StreamsFull`; one leaving frees one."""
    fanout = Fanout(max_streams=2)
    first, _second = fanout.subscribe(0), fanout.subscribe(0)
    with pytest.raises(StreamsFull):
        fanout.subscribe(0)
    assert fanout.refused == 1
    fanout.unsubscribe(first)
    fanout.unsubscribe(first)  # idempotent
    assert len(fanout) == 1
    fanout.subscribe(0)


async def test_heartbeats_reach_idle_streams_and_stop_when_the_log_is_unread() -> None:
    """Every idle stream gets a comment within one interval; when the hub is not current, the
    streams are closed instead (a heartbeat would vouch for a feed that is not being read)."""
    fanout = Fanout(heartbeat=0.08)
    current = True
    subscriptions = [fanout.subscribe(0) for _ in range(20)]
    fanout.start(lambda: current)
    try:
        chunks = await asyncio.wait_for(asyncio.gather(*(s.take() for s in subscriptions)), 2)
        assert set(chunks) == {HEARTBEAT}
        current = False
        ended = await asyncio.wait_for(asyncio.gather(*(s.take() for s in subscriptions)), 2)
        assert set(ended) == {None}
    finally:
        await fanout.stop()


async def test_stopping_closes_streams_and_later_subscribers() -> None:
    """`stop` ends every stream after what was queued; a later subscription ends at once."""
    fanout = Fanout()
    fanout.start(lambda: True)
    early = fanout.subscribe(0)
    fanout.publish(b"last words")
    await fanout.stop()
    assert await early.take() == b"last words"
    assert await early.take() is None
    assert await fanout.subscribe(0).take() is None
