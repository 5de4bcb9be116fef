"""A cache shared by several resource-server processes, in Redis (RFC 7662 §4, RFC 9700 §4.9.3).

Same rules as the memory cache (`cache.fresh_until`): positive answers until min(`exp`,
`max_ttl`, TTL cap), negative ones only when `negative_ttl` > 0, keys named by the token's
SHA-256 hex and never by the token. It sits behind each process's memory cache
(`Validator(shared_cache=...)`), which also keeps the "known expired" markers.

Keys under `prefix`::

    {prefix}t:{token_hash}   JSON {"s": stored_at, "u": fresh_until, "c": claims}, PX to fresh_until
    {prefix}c:{client_id}    sorted set token_hash → fresh_until (ms), for `evict_client`
    {prefix}idx              sorted set token_hash → fresh_until (ms), for the entry-count bound
    {prefix}p:{proof key}    "1", PX to the DPoP proof's `replay_until` (`RedisReplayStore`)

How it stays bounded: every entry expires (PX) within `max_ttl` and never after `exp`, so the
namespace holds at most the tokens seen during the last `max_ttl` seconds; `max_entries` caps
that count by dropping the soonest-expiring entries (approximate under concurrent writers); the
sorted sets are pruned of expired members on every write and expire themselves once idle. In
production also give Redis a `maxmemory` with `maxmemory-policy volatile-lru` (or
`volatile-ttl`): every key here carries a TTL, so Redis may evict them under memory pressure
while keys without TTL stay untouched.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, cast

from redis.asyncio import Redis

from tokengate.resource.protocol.claims import TokenClaims, parse_claims
from tokengate.resource.protocol.errors import InvalidIntrospectionResponse
from tokengate.resource.protocol.freshness import fresh_until
from tokengate.resource.runtime.cache import CachedClaims, Clock
from tokengate.resource.runtime.settings import ValidatorSettings

DEFAULT_PREFIX = "tokengate:rs:"


class RedisTokenCache:
    """`SharedTokenCache` in Redis (redis.asyncio)."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_entries: int | None = 100_000,
        max_ttl: float = 300.0,
        negative_ttl: float = 0.0,
        clock: Clock = time.time,
    ) -> None:
        if max_ttl < 0 or negative_ttl < 0 or (max_entries is not None and max_entries < 1):
            raise ValueError("cache bounds must be positive")
        self.redis = redis
        self.prefix = prefix
        self.max_entries = max_entries
        self.max_ttl = max_ttl
        self.negative_ttl = negative_ttl
        self._clock = clock
        self._cap: float | None = None

    @classmethod
    def from_url(cls, url: str, settings: ValidatorSettings, **options: Any) -> RedisTokenCache:
        """A cache at `redis://…` bounded like the validator's own (`max_ttl`, `negative_ttl`),
        with connect and command timeouts so a hung Redis costs a request no more than them."""
        redis = Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
        limits = {"max_ttl": settings.max_ttl, "negative_ttl": settings.negative_ttl}
        return cls(redis, **{**limits, **options})

    def set_ttl_cap(self, seconds: float | None) -> None:
        """Cap entries' lives, stored ones included (checked when read), at `seconds`."""
        if seconds is not None and seconds < 0:
            raise ValueError("TTL cap must not be negative")
        self._cap = seconds

    async def get(self, token_hash: str) -> CachedClaims | None:
        """A fresh answer for a token hash, or None."""
        stored = await self.redis.get(self._entry_key(token_hash))
        if stored is None:
            return None
        entry = _decode(stored)
        if entry is None:
            return None
        stored_at, until, claims = entry
        if self._cap is not None:
            until = min(until, stored_at + self._cap)
        return CachedClaims(claims, until) if self._clock() < until else None

    async def put(self, token_hash: str, claims: TokenClaims) -> None:
        """Store an answer with a TTL that never reaches past `exp`."""
        now = self._clock()
        until = fresh_until(
            claims, now=now, max_ttl=self.max_ttl, negative_ttl=self.negative_ttl, cap=self._cap
        )
        key = self._entry_key(token_hash)
        if until is None:
            await self.redis.delete(key)  # a fresher "do not cache" answer replaces an old one
            return
        value = json.dumps({"s": now, "u": until, "c": dict(claims.raw)}, separators=(",", ":"))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, value, px=max(1, math.floor((until - now) * 1000)))
            self._index(pipe, self._index_key(), token_hash, now, until)
            if claims.client_id is not None:
                self._index(pipe, self._client_key(claims.client_id), token_hash, now, until)
            pipe.zcard(self._index_key())
            results = await pipe.execute()
        await self._shrink(int(results[-1]))

    async def evict_token_hash(self, token_hash: str) -> bool:
        """Forget one token; True if it was cached."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._entry_key(token_hash))
            pipe.zrem(self._index_key(), token_hash)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def evict_client(self, client_id: str) -> int:
        """Forget every token of `client_id`; returns how many entries went."""
        client_key = self._client_key(client_id)
        members = [
            _text(m) for m in cast(list[bytes | str], await self.redis.zrange(client_key, 0, -1))
        ]
        async with self.redis.pipeline(transaction=True) as pipe:
            if members:
                pipe.delete(*(self._entry_key(m) for m in members))
                pipe.zrem(self._index_key(), *members)
            pipe.delete(client_key)
            results = await pipe.execute()
        return int(results[0]) if members else 0

    async def clear(self) -> None:
        """Delete every key of this namespace (SCAN, so safe on a busy server)."""
        keys = [key async for key in self.redis.scan_iter(match=self.prefix + "*", count=500)]
        if keys:
            await self.redis.delete(*keys)

    def _index(self, pipe: Any, key: str, member: str, now: float, until: float) -> None:
        horizon_ms = math.ceil(max(self.max_ttl, self.negative_ttl) * 1000) + 1000
        pipe.zadd(key, {member: until * 1000})
        pipe.zremrangebyscore(key, "-inf", now * 1000)
        pipe.pexpire(key, horizon_ms)

    async def _shrink(self, size: int) -> None:
        if self.max_entries is None or size <= self.max_entries:
            return
        popped = await self.redis.zpopmin(self._index_key(), size - self.max_entries)
        members = [_text(member) for member, _ in cast(list[tuple[bytes | str, float]], popped)]
        if members:
            await self.redis.delete(*(self._entry_key(member) for member in members))

    def _entry_key(self, token_hash: str) -> str:
        return f"{self.prefix}t:{token_hash}"

    def _client_key(self, client_id: str) -> str:
        return f"{self.prefix}c:{client_id}"

    def _index_key(self) -> str:
        return f"{self.prefix}idx"


class RedisReplayStore:
    """`ReplayStore` in Redis: one `SET NX PX` per proof, so replicas refuse each other's
    replays (RFC 9449 §11.1). A failing Redis raises; the validator then answers 503."""

    def __init__(
        self, redis: Redis, *, prefix: str = DEFAULT_PREFIX, clock: Clock = time.time
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self._clock = clock

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisReplayStore:
        """A store at `redis://…` with the same connect and command timeouts as the cache."""
        redis = Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
        return cls(redis, **options)

    async def first_use(self, key: str, until: float) -> bool:
        """Record `key` until `until`; False if a replica (or this one) already had it."""
        ttl_ms = max(1, math.ceil((until - self._clock()) * 1000))
        return bool(await self.redis.set(f"{self.prefix}p:{key}", b"1", nx=True, px=ttl_ms))


def _decode(stored: bytes | str) -> tuple[float, float, TokenClaims] | None:
    try:
        data = json.loads(stored)
        return float(data["s"]), float(data["u"]), parse_claims(data["c"])
    except (ValueError, KeyError, TypeError, InvalidIntrospectionResponse):
        return None  # written by something else: treat as a miss


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
