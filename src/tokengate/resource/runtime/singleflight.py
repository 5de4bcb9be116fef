"""Single-flight: concurrent lookups of one key share one call (on the runtime's event loop).

The first caller for a key (the leader) runs the function; every caller arriving while it runs
waits for the same outcome. A failure reaches every waiter and is not remembered: the next
caller starts a new call. If the leader is cancelled (its client went away), its waiters do
not inherit the cancellation: one of them leads a new call.

Threads share it too: the WSGI adapter runs every lookup on the runtime's one loop, so 100
threads asking for one fresh token join one call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar, cast

from tokengate.resource.runtime.stats import Counter

V = TypeVar("V")


class _Outcome(Generic[V]):
    """What a finished call produced; neither value nor error means the leader was cancelled."""

    __slots__ = ("error", "ok", "value")

    def __init__(self) -> None:
        self.ok = False
        self.value: V | None = None
        self.error: Exception | None = None

    def settled(self) -> bool:
        """True unless the leader gave up without an answer."""
        return self.ok or self.error is not None

    def unwrap(self) -> V:
        """The value, or raise the shared error."""
        if self.error is not None:
            raise self.error
        return cast(V, self.value)  # ok is True, so value was set (V may itself be None)


class SingleFlight(Generic[V]):
    """Deduplicate concurrent awaits of `fn` per key; `joins` counts the callers who waited."""

    def __init__(self, joins: Counter | None = None) -> None:
        self._joins = joins
        self._calls: dict[str, tuple[asyncio.Event, _Outcome[V]]] = {}

    def in_flight(self) -> int:
        """How many keys have a call running."""
        return len(self._calls)

    async def do(self, key: str, fn: Callable[[], Awaitable[V]]) -> V:
        """Return `await fn()`, sharing one call with every concurrent caller for `key`."""
        while True:
            call = self._calls.get(key)
            if call is None:
                return await self._lead(key, fn)
            if self._joins is not None:
                self._joins.inc()
            done, outcome = call
            await done.wait()
            if outcome.settled():
                return outcome.unwrap()

    async def _lead(self, key: str, fn: Callable[[], Awaitable[V]]) -> V:
        done, outcome = asyncio.Event(), _Outcome[V]()
        self._calls[key] = (done, outcome)
        try:
            value = await fn()
        except Exception as exc:
            outcome.error = exc
            raise
        else:
            outcome.value, outcome.ok = value, True
            return value
        finally:
            del self._calls[key]
            done.set()
