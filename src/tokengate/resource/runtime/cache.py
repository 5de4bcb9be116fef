"""A bounded in-memory cache of introspection answers (RFC 7662 §4, RFC 9700 §4.9.3).

How long an answer may be kept is `protocol.freshness`'s rule. No plaintext tokens at rest:
entries are keyed by `hash_value(token)` (SHA-256 hex, the same digest revocation events
carry). Once `exp` has passed, an entry is kept as a *known-expired* marker (for up to
`max_ttl` more): the token can never become valid again, so it is refused without a call.
The TTL cap (`set_ttl_cap`) applies to entries already stored too: a revocation-event
subscriber that loses its feed can shorten every entry's life at once.

Thread-safe: the WSGI adapter's threads read it directly (a warm-cache request never waits for
the runtime's event loop); everything else happens on that loop.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tokengate.resource.protocol.claims import TokenClaims
from tokengate.resource.protocol.freshness import fresh_until, known_expired
from tokengate.resource.runtime.stats import Stats

Clock = Callable[[], float]


@dataclass(slots=True)
class _Entry:
    claims: TokenClaims
    stored_at: float
    fresh_until: float


class MemoryTokenCache:
    """A thread-safe LRU of introspection answers, bounded by entry count."""

    def __init__(
        self,
        *,
        stats: Stats,
        max_entries: int = 10_000,
        max_ttl: float = 300.0,
        negative_ttl: float = 0.0,
        clock: Clock = time.time,
    ) -> None:
        if max_entries < 0 or max_ttl < 0 or negative_ttl < 0:
            raise ValueError("cache bounds must not be negative")
        self.max_entries = max_entries
        self.max_ttl = max_ttl
        self.negative_ttl = negative_ttl
        self.stats = stats
        self._clock = clock
        self._cap: float | None = None
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._by_client: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def ttl_cap(self) -> float | None:
        """The current TTL cap in seconds, or None."""
        return self._cap

    def get(self, token_hash: str, *, count_miss: bool = True) -> TokenClaims | None:
        """Cached claims for a token hash (possibly known-expired), or None on a miss (not
        counted when `count_miss` is False: a first look the caller will repeat)."""
        with self._lock:
            entry = self._entries.get(token_hash)
            if entry is not None and not self._usable(entry, self._clock()):
                self._remove(token_hash)
                self.stats.cache_expirations.inc()
                entry = None
            if entry is None:
                if count_miss:
                    self.stats.cache_misses.inc()
                return None
            self._entries.move_to_end(token_hash)
            self.stats.cache_hits.inc()
            return entry.claims

    def put(self, token_hash: str, claims: TokenClaims, *, not_after: float | None = None) -> None:
        """Store an answer for as long as it may be reused; `not_after` bounds it further."""
        now = self._clock()
        until = fresh_until(
            claims,
            now=now,
            max_ttl=self.max_ttl,
            negative_ttl=self.negative_ttl,
            cap=self._cap,
            not_after=not_after,
        )
        with self._lock:
            self._remove(token_hash)  # a fresher answer replaces the old one, even "don't cache"
            if until is None and not known_expired(claims, now):
                return
            self._entries[token_hash] = _Entry(claims, now, now if until is None else until)
            if claims.client_id is not None:
                self._by_client.setdefault(claims.client_id, set()).add(token_hash)
            self._trim()

    def evict_token_hash(self, token_hash: str) -> bool:
        """Forget one token (a revocation event carries its hash); True if it was cached."""
        with self._lock:
            found = self._remove(token_hash)
        if found:
            self.stats.cache_invalidations.inc()
        return found

    def evict_client(self, client_id: str) -> int:
        """Forget every token issued to `client_id`; returns how many entries went."""
        with self._lock:
            hashes = list(self._by_client.get(client_id, ()))
            for token_hash in hashes:
                self._remove(token_hash)
        self.stats.cache_invalidations.inc(len(hashes))
        return len(hashes)

    def set_ttl_cap(self, seconds: float | None) -> None:
        """Cap every entry's life (stored ones included) at `seconds` after it was stored."""
        if seconds is not None and seconds < 0:
            raise ValueError("TTL cap must not be negative")
        self._cap = seconds

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
            self._by_client.clear()

    def _usable(self, entry: _Entry, now: float) -> bool:
        limit = entry.fresh_until
        if self._cap is not None:
            limit = min(limit, entry.stored_at + self._cap)
        if now < limit:
            return True
        exp = entry.claims.exp
        return exp is not None and known_expired(entry.claims, now) and now < exp + self.max_ttl

    def _remove(self, token_hash: str) -> bool:
        entry = self._entries.pop(token_hash, None)
        if entry is None:
            return False
        if entry.claims.client_id is not None:
            self._unindex(entry.claims.client_id, token_hash)
        return True

    def _unindex(self, client_id: str, token_hash: str) -> None:
        hashes = self._by_client.get(client_id)
        if hashes is not None:
            hashes.discard(token_hash)
            if not hashes:
                del self._by_client[client_id]

    def _trim(self) -> None:
        while len(self._entries) > self.max_entries:
            oldest = next(iter(self._entries))
            self._remove(oldest)
            self.stats.cache_evictions.inc()


@dataclass(frozen=True, slots=True)
class CachedClaims:
    """An answer from a shared cache and the epoch time until which it stays fresh."""

    claims: TokenClaims
    fresh_until: float


class SharedTokenCache(Protocol):
    """A cache shared by several processes (e.g. `RedisTokenCache`), behind the local one."""

    async def get(self, token_hash: str) -> CachedClaims | None:
        """A fresh answer, or None."""
        ...

    async def put(self, token_hash: str, claims: TokenClaims) -> None:
        """Store an answer under the same bounds as `fresh_until`."""
        ...

    async def evict_token_hash(self, token_hash: str) -> bool:
        """Forget one token."""
        ...

    async def evict_client(self, client_id: str) -> int:
        """Forget every token of a client."""
        ...

    def set_ttl_cap(self, seconds: float | None) -> None:
        """Cap entries' lives (stored ones included)."""
        ...
