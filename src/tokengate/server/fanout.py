"""Fan-out of the revocation-event stream: one read and one encoding per event, for every stream.

The event hub reads new events from the store once and hands `publish` the encoded frames;
`publish` appends the same bytes to each stream's bounded queue and wakes that stream's task,
which writes them out. A stream whose queue would pass `queue_bytes` (its peer reads too
slowly, or not at all) is dropped: its task is cancelled, the connection closed, and the
subscriber resumes with `Last-Event-ID`, replaying from the store. Backlog replay on
(re)connection stays per stream; live delivery never costs a query per subscriber.

Heartbeats come from here too: every `heartbeat` seconds each idle stream gets a comment line,
spread over `HEARTBEAT_SLICES` ticks so that ten thousand streams never wake at once. While
the hub cannot read the event log heartbeats would vouch for a stream that is not being fed,
so every stream is closed instead (subscribers then bound their caches and reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

log = logging.getLogger("tokengate.events")

HEARTBEAT = b": keepalive\n\n"
HEARTBEAT_SLICES = 8
DEFAULT_QUEUE_BYTES = 1024 * 1024


class StreamsFull(Exception):
    """This process already serves its maximum number of event streams."""


class Subscription:
    """One stream's place in the fan-out: the bytes waiting for it, bounded.

    `head` is the hub's position when it subscribed: the queue holds exactly the events after
    it, so the stream replays up to `head` from the store and then drains the queue.
    """

    __slots__ = ("_chunks", "_size", "_waiter", "closed", "dropped", "head", "slot", "task")

    def __init__(self, head: int, slot: int) -> None:
        self.head = head
        self.slot = slot
        self.closed = False
        self.dropped = False
        self.task: asyncio.Task[object] | None = asyncio.current_task()
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._waiter: asyncio.Future[None] | None = None

    @property
    def idle(self) -> bool:
        """Nothing waits to be written."""
        return not self._chunks

    def offer(self, chunk: bytes, limit: int) -> bool:
        """Queue `chunk`; False (nothing queued) when that would pass `limit` bytes."""
        size = self._size + len(chunk)
        if size > limit:
            return False
        self._chunks.append(chunk)
        self._size = size
        self._wake()
        return True

    def close(self) -> None:
        """End the stream once what is queued has been written."""
        self.closed = True
        self._wake()

    async def take(self) -> bytes | None:
        """Everything queued, as one chunk; None once closed and drained."""
        while not self._chunks:
            if self.closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunks = self._chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._size = 0
        return data

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Fanout:
    """Every open event stream of this process; `publish` delivers one chunk to all of them."""

    def __init__(
        self,
        *,
        max_streams: int = 10_000,
        queue_bytes: int = DEFAULT_QUEUE_BYTES,
        heartbeat: float = 2.0,
    ) -> None:
        if max_streams < 0 or queue_bytes < 1 or heartbeat <= 0:
            raise ValueError("max_streams >= 0, queue_bytes >= 1 and heartbeat > 0 required")
        self.max_streams = max_streams
        self.queue_bytes = queue_bytes
        self.heartbeat = heartbeat
        self.dropped = 0  # streams disconnected for falling behind
        self.refused = 0  # subscriptions answered 503 at the cap
        self._slices: list[dict[Subscription, None]] = [{} for _ in range(HEARTBEAT_SLICES)]
        self._count = 0
        self._next_slot = 0
        self._stopped = False
        self._beats: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return self._count

    def subscribe(self, head: int) -> Subscription:
        """A new stream's subscription, queuing every event after `head` from now on."""
        if self._count >= self.max_streams:
            self.refused += 1
            raise StreamsFull(f"{self.max_streams} event streams already open")
        slot, self._next_slot = self._next_slot, (self._next_slot + 1) % HEARTBEAT_SLICES
        subscription = Subscription(head, slot)
        self._slices[slot][subscription] = None
        self._count += 1
        if self._stopped:
            subscription.close()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a stream (idempotent)."""
        streams = self._slices[subscription.slot]
        if subscription in streams:
            del streams[subscription]
            self._count -= 1

    def publish(self, chunk: bytes) -> None:
        """Queue `chunk` (encoded once) for every stream; drop the streams that cannot keep up."""
        limit = self.queue_bytes
        behind = [
            subscription
            for streams in self._slices
            for subscription in streams
            if not subscription.offer(chunk, limit)
        ]
        for subscription in behind:
            self._drop(subscription)
        if behind:
            log.warning(
                "%d event subscribers fell %d bytes behind: disconnected (they resume with"
                " Last-Event-ID)",
                len(behind),
                limit,
            )

    def close_all(self) -> None:
        """End every stream (server stopping, or the event log cannot be read)."""
        for streams in self._slices:
            for subscription in streams:
                subscription.close()

    def start(self, is_current: Callable[[], bool]) -> None:
        """Send heartbeats while `is_current()`; close every stream when it is not."""
        self._beats = asyncio.create_task(self._beat(is_current), name="tokengate-heartbeats")

    def end(self) -> None:
        """End every stream, and any that subscribes from now on (the server is stopping)."""
        self._stopped = True
        self.close_all()

    async def stop(self) -> None:
        """Stop the heartbeats and `end`."""
        self.end()
        if self._beats is not None:
            self._beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beats

    async def _beat(self, is_current: Callable[[], bool]) -> None:
        tick = self.heartbeat / HEARTBEAT_SLICES
        slot = 0
        while True:
            await asyncio.sleep(tick)
            if not is_current():
                self.close_all()
                continue
            for subscription in self._slices[slot]:
                if subscription.idle:
                    subscription.offer(HEARTBEAT, self.queue_bytes)
            slot = (slot + 1) % HEARTBEAT_SLICES

    def _drop(self, subscription: Subscription) -> None:
        self.unsubscribe(subscription)
        self.dropped += 1
        subscription.dropped = True
        if subscription.task is not None:
            subscription.task.cancel()
