"""Fan-out of the revocation-event stream: one read and one encoding per event, for every stream.

The event hub reads new events from the store once and hands `publish` the encoded frames;
`publish` writes the same bytes to every live stream itself (`send_eagerly`: the server's
`send` finishes at once unless the connection's buffer is full), so an event costs one
transport write per subscriber and no task wake-up: measured, waking a task per stream cost
about as much as the write (`bench/fanout.py`). A stream whose `send` has to wait keeps its
later chunks in a bounded queue (`queue_bytes`) that a small task writes out once the peer
reads again; a stream that would pass the bound (its peer reads too slowly, or not at all) is
dropped: its connection is closed and the subscriber resumes with `Last-Event-ID`, replaying
from the store. Backlog replay on (re)connection stays per stream (`server.stream`).

Heartbeats come from here too: every `heartbeat` seconds each stream gets a comment line,
spread over `HEARTBEAT_SLICES` ticks so that ten thousand streams are never written at once. A
heartbeat vouches that the hub is reading the event log, so none is sent while it is not
current: subscribers then hear nothing and, after their heartbeat timeout, bound their caches
by themselves, while a hub merely slowed by a burst of work recovers without dropping anyone.
Once the log has gone unread for `CLOSE_WHEN_STALE` seconds every stream is closed, so
subscribers reconnect (maybe to another replica) whatever their own timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from tokengate.asgi.send import send_eagerly
from tokengate.asgi.types import Send

log = logging.getLogger("tokengate.events")

HEARTBEAT = b": keepalive\n\n"
HEARTBEAT_SLICES = 8
DEFAULT_QUEUE_BYTES = 1024 * 1024
CLOSE_WHEN_STALE = 10.0
_END: dict[str, object] = {"type": "http.response.body", "body": b"", "more_body": False}


class StreamsFull(Exception):
    """This process already serves its maximum number of event streams."""


class Subscription:
    """One stream's place in the fan-out.

    `head` is the hub's position when it subscribed: everything published afterwards holds
    exactly the events after it, so the stream replays up to `head` from the store and then
    calls `go_live`. Until then, and while a write waits for the peer, chunks are queued.
    """

    __slots__ = (
        "_pending", "_queue", "_queued", "_send", "_writer", "_writing",
        "closing", "dropped", "head", "slot",
    )  # fmt: skip

    def __init__(self, head: int, slot: int, send: Send) -> None:
        self.head = head
        self.slot = slot
        self.closing = False
        self.dropped = False
        self._send = send
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._writer: asyncio.Task[None] | None = None
        self._pending: Coroutine[Any, Any, None] | None = None  # for the writer to start
        self._writing = True  # the stream's own task writes the backlog first

    @property
    def idle(self) -> bool:
        """Nothing waits to be written (the peer is keeping up)."""
        return not self._writing

    def deliver(self, chunk: bytes, limit: int) -> bool:
        """Write `chunk` now, or queue it behind a write in progress; False when the queue
        would pass `limit` bytes (nothing queued: the caller drops this stream)."""
        if self.closing:
            return True  # the response is ending: the subscriber resumes with Last-Event-ID
        if self._writing:
            if self._queued + len(chunk) > limit:
                return False
            self._queue.append(chunk)
            self._queued += len(chunk)
            return True
        self._write({"type": "http.response.body", "body": chunk, "more_body": True})
        return True

    async def go_live(self) -> None:
        """Called by the stream's task once the backlog is written: write what was queued
        meanwhile, then let `deliver` write directly."""
        await self._drain()

    def close(self) -> None:
        """End the response once what is queued has been written."""
        if self.closing:
            return
        self.closing = True
        if not self._writing:
            self._write(_END)

    def drop(self) -> None:
        """Stop writing to a stream that fell behind (its connection is closed by the caller)."""
        self.dropped = True
        self._queue.clear()
        self._queued = 0
        if self._writer is not None:
            self._writer.cancel()
        if self._pending is not None:  # cancelled before it ran: close it here instead
            self._pending.close()
            self._pending = None

    def _write(self, message: dict[str, object]) -> None:
        try:
            pending = send_eagerly(self._send, message)
        except Exception:  # one broken stream must not stop the fan-out to the others
            log.debug("event stream write failed", exc_info=True)
            self.closing = True  # its task sees the disconnect, or the drop
            return
        if pending is not None:
            self._writing = True
            self._pending = pending
            self._writer = asyncio.ensure_future(self._finish())

    async def _finish(self) -> None:
        pending, self._pending = self._pending, None
        assert pending is not None
        try:
            await pending
            await self._drain()
        except Exception:
            log.debug("event stream write failed", exc_info=True)
            self.closing = True

    async def _drain(self) -> None:
        """Write the queue out until it stays empty, then hand writing back to `deliver`."""
        while self._queue:
            chunks, self._queue, self._queued = self._queue, deque(), 0
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            await self._send({"type": "http.response.body", "body": body, "more_body": True})
        self._writing = False
        if self.closing:
            self._write(_END)


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
        self.refused = 0  # subscriptions refused at the cap
        self._slices: list[dict[Subscription, Callable[[], object]]] = [
            {} for _ in range(HEARTBEAT_SLICES)
        ]
        self._count = 0
        self._next_slot = 0
        self._stopped = False
        self._beats: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return self._count

    def subscribe(self, head: int, send: Send, disconnect: Callable[[], object]) -> Subscription:
        """A new stream's subscription to every chunk published from now on; `disconnect`
        closes its connection at once (called when the stream falls behind)."""
        if self._count >= self.max_streams:
            self.refused += 1
            raise StreamsFull(f"{self.max_streams} event streams already open")
        slot, self._next_slot = self._next_slot, (self._next_slot + 1) % HEARTBEAT_SLICES
        subscription = Subscription(head, slot, send)
        self._slices[slot][subscription] = disconnect
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
        """Deliver `chunk` (encoded once) to every stream; drop those that cannot keep up."""
        limit = self.queue_bytes
        behind = [
            subscription
            for streams in self._slices
            for subscription in streams
            if not subscription.deliver(chunk, limit)
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
            for subscription in list(streams):
                subscription.close()

    def end(self) -> None:
        """End every stream, and any that subscribes from now on (the server is stopping)."""
        self._stopped = True
        self.close_all()

    def start(self, is_current: Callable[[], bool], stale_for: Callable[[], float]) -> None:
        """Send heartbeats while `is_current()`; close every stream once `stale_for()` passes
        `CLOSE_WHEN_STALE` seconds."""
        beats = self._beat(is_current, stale_for)
        self._beats = asyncio.create_task(beats, name="tokengate-heartbeats")

    async def stop(self) -> None:
        """Stop the heartbeats and `end`."""
        self.end()
        if self._beats is not None:
            self._beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beats

    async def _beat(self, is_current: Callable[[], bool], stale_for: Callable[[], float]) -> None:
        tick = self.heartbeat / HEARTBEAT_SLICES
        slot = 0
        while True:
            await asyncio.sleep(tick)
            if not is_current():
                if stale_for() > CLOSE_WHEN_STALE:
                    self.close_all()
                continue
            behind = [s for s in self._slices[slot] if not s.deliver(HEARTBEAT, self.queue_bytes)]
            for subscription in behind:
                self._drop(subscription)
            slot = (slot + 1) % HEARTBEAT_SLICES

    def _drop(self, subscription: Subscription) -> None:
        disconnect = self._slices[subscription.slot].get(subscription)
        self.unsubscribe(subscription)
        self.dropped += 1
        subscription.drop()
        if disconnect is not None:
            disconnect()
