"""The event hub: learns of new revocation events, tells listeners, feeds every event stream.

Events are written by this process (revocation endpoint), by other processes on the same
database (the CLI, other replicas). The hub notices them three ways: a local `poke()` right
after a local write, a backend change notification where the backend has one (PostgreSQL
`LISTEN`, see `ChangeWaiter`), and a poll of `last_position()` as the fallback and safety net.

Each new event is read once and encoded once, whatever the number of subscribers: the frames go
to `Fanout.publish` in the same step that advances `position`, so a stream subscribing at
position P receives exactly the events after P live and replays the rest from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from tokengate.asgi.types import Send
from tokengate.core.models import RevocationEvent
from tokengate.core.wire import Notice, revocation_frame
from tokengate.server.fanout import Fanout, Subscription
from tokengate.storage.base import Store

log = logging.getLogger("tokengate.events")
Listener = Callable[[list[RevocationEvent]], Awaitable[None] | None]


@runtime_checkable
class ChangeWaiter(Protocol):
    """A backend that can push "new events exist" (e.g. PostgreSQL LISTEN/NOTIFY)."""

    async def wait_for_change(self, timeout: float) -> None:
        """Return when the event log may have grown, or after `timeout` seconds."""


def event_frame(event: RevocationEvent) -> bytes:
    """One SSE frame for a stored revocation event."""
    notice = Notice(
        event.position, event.kind.value, event.client_id, event.token_hash, event.occurred_at
    )
    return revocation_frame(notice)


class EventHub:
    """Tracks the newest event position; hands new events to listeners and to every stream."""

    def __init__(
        self, store: Store, poll_interval: float = 0.05, fanout: Fanout | None = None
    ) -> None:
        self.store = store
        self.poll_interval = poll_interval
        self.fanout = fanout if fanout is not None else Fanout()
        self.position = 0
        self._listeners: list[Listener] = []
        self._poked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_ok = float("-inf")
        self._waiter = store if isinstance(store, ChangeWaiter) else None
        # With change notifications the log is still re-read every second as a safety net.
        self._tick = poll_interval if self._waiter is None else 1.0
        self._trust_window = self._tick + max(1.0, poll_interval * 20)

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(events)` for every batch of new events, in order."""
        self._listeners.append(listener)

    async def start(self) -> None:
        """Begin following the log from its current head."""
        self.position = await self.store.last_position()
        self._last_ok = time.monotonic()
        self._task = asyncio.create_task(self._run(), name="tokengate-event-hub")
        self.fanout.start(self.is_current, self.stale_for)

    async def stop(self) -> None:
        """Stop following and end every stream."""
        await self.fanout.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def stale_for(self) -> float:
        """Seconds since the log was last read completely."""
        return time.monotonic() - self._last_ok

    def is_current(self) -> bool:
        """True while the hub has read the log recently: caches may trust invalidations."""
        return time.monotonic() - self._last_ok < self._trust_window

    def poke(self) -> None:
        """A local write just appended events: look now rather than at the next poll."""
        self._poked.set()

    def subscribe(self, send: Send, disconnect: Callable[[], object]) -> Subscription:
        """A stream's subscription to every event after the current position (`StreamsFull`
        at the cap); see `Fanout.subscribe`."""
        return self.fanout.subscribe(self.position, send, disconnect)

    async def sync(self) -> None:
        """Read every event past our position, tell listeners, feed the streams."""
        head = await self.store.last_position()
        while self.position < head:
            batch = await self.store.events_after(self.position, 1000)
            if not batch:
                break
            for listener in self._listeners:
                result = listener(batch)
                if result is not None:
                    await result
            # No await from here to the end of the step: a subscription sees a position and
            # the events after it, never a mix.
            self.position = batch[-1].position
            self.fanout.publish(b"".join(event_frame(event) for event in batch))
        self._last_ok = time.monotonic()

    async def _run(self) -> None:
        while True:
            await self._wait_for_news()
            try:
                await self.sync()
            except Exception:  # storage hiccup: keep following, retry on the next tick
                log.warning("event hub could not read the event log", exc_info=True)
                await asyncio.sleep(min(1.0, self.poll_interval * 10))

    async def _wait_for_news(self) -> None:
        sources: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._poked.wait())}
        if self._waiter is not None:
            sources.add(asyncio.ensure_future(self._waiter.wait_for_change(self._tick)))
        try:
            await asyncio.wait(sources, timeout=self._tick, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in sources:
                fut.cancel()
            self._poked.clear()
