"""Where a resource server remembers the DPoP proofs it accepted (RFC 9449 §11.1).

A proof may be used once: its key (`protocol.dpop.replay_key`) is kept until the proof is too
old to pass the `iat` check anyway (`VerifiedProof.replay_until`), then forgotten. The memory
store is bounded: when it is full of entries still needed it refuses new proofs (the caller
answers 503) rather than forgetting one that could then be replayed. `RedisReplayStore`
(`runtime.redis`) shares the memory between replicas.

Thread-safe: the WSGI adapter's threads may share the validator's store.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from typing import Protocol

Clock = Callable[[], float]
DEFAULT_MAX_ENTRIES = 200_000


class ReplayStoreFull(Exception):
    """No room for another proof without forgetting one still in its window."""


class ReplayStore(Protocol):
    """Remembers proof keys until a time; answers whether a key is new."""

    async def first_use(self, key: str, until: float) -> bool:
        """Record `key` until `until` (epoch seconds); False if it was already there."""
        ...


class MemoryReplayStore:
    """`ReplayStore` in this process: a dict and a heap of expiry times."""

    def __init__(self, *, max_entries: int = DEFAULT_MAX_ENTRIES, clock: Clock = time.time) -> None:
        if max_entries < 1:
            raise ValueError("the replay store needs room for at least one proof")
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}
        self._expiries: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._until)

    async def first_use(self, key: str, until: float) -> bool:
        """Record `key` until `until`; False if seen; `ReplayStoreFull` if no room is left."""
        return self.record(key, until)

    def record(self, key: str, until: float) -> bool:
        """`first_use`, callable from any thread."""
        with self._lock:
            now = self._clock()
            self._purge(now)
            seen = self._until.get(key)
            if seen is not None and seen > now:
                return False
            if len(self._until) >= self.max_entries:
                raise ReplayStoreFull("the DPoP replay store is full")
            self._until[key] = until
            heapq.heappush(self._expiries, (until, key))
            return True

    def _purge(self, now: float) -> None:
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            until, key = heapq.heappop(expiries)
            if self._until.get(key) == until:
                del self._until[key]
