"""The metadata's `scopes_supported` (RFC 8414 §2): the union of the clients' scopes, read from
the store at most once per `ttl` seconds.

The metadata endpoint needs no credentials, so what it reads must not grow with the number of
clients on every request (20,000 clients cost a SQLite server 350 ms per request when each one
listed them all). The store answers with one pass over the distinct scope strings; this keeps
that answer for `ttl` (1 s), shares one read between concurrent requests, and drops it at once
when the event log reports a client updated, disabled or deleted (any replica or worker). A new
client's scopes appear within `ttl` (creating a client writes no event). The clock is the
server's wall clock; a step backwards ends the kept answer rather than stretching it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tokengate.core.models import EventKind, RevocationEvent
from tokengate.storage.base import Store

_CHANGING = frozenset(
    {EventKind.CLIENT_UPDATED, EventKind.CLIENT_DISABLED, EventKind.CLIENT_DELETED}
)


class ScopesSupported:
    """The sorted scope list the metadata advertises, kept briefly."""

    def __init__(self, store: Store, clock: Callable[[], float], ttl: float = 1.0) -> None:
        self._store = store
        self._clock = clock
        self._ttl = ttl
        self._value: list[str] | None = None
        self._until = 0.0
        self._reading: asyncio.Future[list[str]] | None = None
        self._generation = 0  # bumped by `forget`: a read begun before it is not kept

    async def get(self) -> list[str]:
        """The scopes, read again when older than `ttl` or forgotten."""
        if self._value is not None and self._until - self._ttl <= self._clock() < self._until:
            return self._value
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read())
            self._reading.add_done_callback(self._finished)
        return await asyncio.shield(self._reading)

    def forget(self) -> None:
        """Read the store again on the next request (a read in flight is not kept)."""
        self._value, self._reading = None, None
        self._generation += 1

    def on_events(self, events: list[RevocationEvent]) -> None:
        """Hub listener: a changed client may have changed the union."""
        if any(e.kind in _CHANGING for e in events):
            self.forget()

    async def _read(self) -> list[str]:
        started, generation = self._clock(), self._generation
        value = sorted(await self._store.client_scopes())
        if generation == self._generation:
            self._value, self._until = value, started + self._ttl
        return value

    def _finished(self, reading: asyncio.Future[list[str]]) -> None:
        if self._reading is reading:
            self._reading = None
        if not reading.cancelled():
            reading.exception()  # retrieved: a failed read is the waiting requests' error
