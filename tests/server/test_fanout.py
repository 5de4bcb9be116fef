"""The event fan-out: one store read and one encoding per event for every stream of a process,
bounded queues that drop a stream falling behind, the stream cap, heartbeats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.core.records import make_client
from tests.support.fake_events import until
from tokengate.asgi.types import Message
from tokengate.core.models import RevocationEvent
from tokengate.server.events import EventHub
from tokengate.server.fanout import (
    CLOSE_WHEN_STALE,
    HEARTBEAT,
    Fanout,
    StreamsFull,
    Subscription,
)
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


class Peer:
    """An ASGI `send` recording the bodies; `blocked`: a write waits for a peer that never reads."""

    def __init__(self, *, blocked: bool = False) -> None:
        self.bodies: list[bytes] = []
        self.ended = False
        self.blocked = blocked
        self.disconnected = False

    async def send(self, message: Message) -> None:
        self.bodies.append(message["body"])
        self.ended = not message["more_body"]
        if self.blocked:
            await asyncio.Event().wait()

    def disconnect(self) -> None:
        self.disconnected = True


async def disable(store: MemoryStore, client_id: str) -> None:
    """Append one `client_disabled` event."""
    await store.add_client(make_client(client_id=client_id))
    await store.disable_client(client_id, at=1_700_000_000)


async def live(fanout: Fanout, peer: Peer, head: int = 0) -> Subscription:
    subscription = fanout.subscribe(head, peer.send, peer.disconnect)
    await subscription.go_live()
    return subscription


@pytest.fixture
async def hub() -> AsyncIterator[EventHub]:
    """A hub over a counting memory store, not polling on its own (tests call `sync`)."""
    hub = EventHub(CountingStore(), poll_interval=3600, fanout=Fanout(max_streams=5_000))
    yield hub
    await hub.fanout.stop()


async def test_one_read_and_one_encoding_for_every_stream(hub: EventHub) -> None:
    """1,000 streams, one event: one `events_after` call, the same bytes object sent to all."""
    store = hub.store
    assert isinstance(store, CountingStore)
    peers = [Peer() for _ in range(1_000)]
    subscriptions = [await live(hub.fanout, peer, hub.position) for peer in peers]
    await disable(store, "tgc_gone")
    await hub.sync()
    assert store.reads == 1
    sent = [peer.bodies for peer in peers]
    assert b'"client_id":"tgc_gone"' in sent[0][0]
    assert all(len(bodies) == 1 and bodies[0] is sent[0][0] for bodies in sent)
    assert {s.head for s in subscriptions} == {0}
    assert hub.position == 1


async def test_a_subscription_gets_exactly_the_events_after_its_head(hub: EventHub) -> None:
    """Subscribed at position 1 (replaying, not yet live): event 2 is queued, then written."""
    await disable(hub.store, "tgc_one")  # type: ignore[arg-type]
    await hub.sync()
    peer = Peer()
    late = hub.subscribe(peer.send, peer.disconnect)
    await disable(hub.store, "tgc_two")  # type: ignore[arg-type]
    await hub.sync()
    assert late.head == 1
    assert peer.bodies == []  # the stream writes its backlog up to its head first
    await late.go_live()
    assert b"".join(peer.bodies).startswith(b"id: 2\n")
    assert b"id: 1\n" not in b"".join(peer.bodies)


async def test_a_stream_that_falls_behind_is_dropped() -> None:
    """A write that waits queues what follows; past `queue_bytes` the stream is disconnected."""
    fanout = Fanout(queue_bytes=100)
    slow, keeping_up = Peer(blocked=True), Peer()
    stuck = await live(fanout, slow)
    await live(fanout, keeping_up)
    for chunk in (b"a" * 60, b"b" * 60, b"c" * 60):  # a: written (waits), b: queued, c: over
        fanout.publish(chunk)
    assert stuck.dropped
    assert slow.disconnected
    assert fanout.dropped == 1
    assert len(fanout) == 1  # the one that kept up stays
    assert keeping_up.bodies == [b"a" * 60, b"b" * 60, b"c" * 60]
    assert slow.bodies == [b"a" * 60]


async def test_a_write_that_waited_is_followed_by_the_queue_in_order() -> None:
    """A live stream's write that has to wait finishes once the peer reads again, the chunks
    queued meanwhile follow in order, then writes are direct again."""
    fanout = Fanout()
    peer = Peer()
    reading = asyncio.Event()
    reading.set()

    async def send(message: Message) -> None:
        await reading.wait()
        await peer.send(message)

    subscription = fanout.subscribe(0, send, peer.disconnect)
    fanout.publish(b"one")  # queued: the stream is not live yet
    await subscription.go_live()
    reading.clear()  # the peer's window is full
    fanout.publish(b"two")  # started, waits
    fanout.publish(b"three")  # queued behind it
    assert not subscription.idle
    reading.set()
    await until(lambda: subscription.idle)
    fanout.publish(b"four")
    assert b"".join(peer.bodies) == b"onetwothreefour"


async def test_the_cap_refuses_subscriptions_beyond_it() -> None:
    """At `max_streams` streams a new subscription raises `StreamsFull`; one leaving frees one."""
    fanout = Fanout(max_streams=2)
    first, _second = await live(fanout, Peer()), await live(fanout, Peer())
    with pytest.raises(StreamsFull):
        fanout.subscribe(0, Peer().send, Peer().disconnect)
    assert fanout.refused == 1
    fanout.unsubscribe(first)
    fanout.unsubscribe(first)  # idempotent
    assert len(fanout) == 1
    await live(fanout, Peer())


async def test_heartbeats_reach_idle_streams_only_while_the_log_is_read() -> None:
    """Every stream gets a comment within one interval; while the hub is not current none (a
    heartbeat would vouch for a feed that is not being read); long stale, streams close."""
    fanout = Fanout(heartbeat=0.08)
    current, stale = True, 0.0
    peers = [Peer() for _ in range(20)]
    for peer in peers:
        await live(fanout, peer)
    fanout.start(lambda: current, lambda: stale)
    try:
        await asyncio.sleep(0.15)
        assert all(peer.bodies and set(peer.bodies) == {HEARTBEAT} for peer in peers)
        current, stale = False, 1.0
        await asyncio.sleep(0.02)
        counts = [len(peer.bodies) for peer in peers]
        await asyncio.sleep(0.2)
        assert [len(peer.bodies) for peer in peers] == counts
        assert not any(peer.ended for peer in peers)
        stale = CLOSE_WHEN_STALE + 1
        await asyncio.sleep(0.05)
        assert all(peer.ended for peer in peers)
    finally:
        await fanout.stop()


async def test_stopping_ends_streams_and_later_subscribers() -> None:
    """`stop` ends every response; a subscription made afterwards ends once it is live."""
    fanout = Fanout()
    fanout.start(lambda: True, lambda: 0.0)
    early = Peer()
    await live(fanout, early)
    fanout.publish(b"last words")
    await fanout.stop()
    assert early.bodies == [b"last words", b""]
    assert early.ended
    late = Peer()
    await live(fanout, late)
    assert late.ended


async def test_a_broken_stream_does_not_stop_the_fan_out() -> None:
    """A `send` that raises ends that stream only; one already closed gets nothing more."""
    fanout = Fanout()

    async def broken(message: Message) -> None:
        raise RuntimeError("response already completed")

    failing = fanout.subscribe(0, broken, lambda: None)
    await failing.go_live()
    closed, healthy = Peer(), Peer()
    ended = await live(fanout, closed)
    ended.close()
    await live(fanout, healthy)
    fanout.publish(b"event")
    fanout.publish(b"next")
    assert failing.closing
    assert closed.bodies == [b""]
    assert healthy.bodies == [b"event", b"next"]
