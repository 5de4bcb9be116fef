"""The shared Redis cache: same bounds as the memory cache (needs Redis)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tokengate.core.credentials import hash_value
from tokengate.resource.protocol.claims import INACTIVE
from tokengate.resource.runtime.redis import RedisReplayStore, RedisTokenCache
from tokengate.resource.runtime.settings import ValidatorSettings
from tokengate.resource.runtime.validator import Validator
from tokengate.resource.testing import FakeAuthorizationServer, StaticIntrospector, claims

pytestmark = [pytest.mark.redis, pytest.mark.anyio]

REDIS_URL = os.environ.get("TOKENGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """A Redis connection; skipped when Redis is unreachable, unless CI=true."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {REDIS_URL} is unreachable in CI: {exc}")
        pytest.skip(
            f"Redis at {REDIS_URL} is unreachable ({type(exc).__name__}); set "
            "TOKENGATE_TEST_REDIS_URL or start Redis to run these tests"
        )
    yield client
    await client.aclose()


@pytest.fixture
async def cache(redis: Redis) -> AsyncIterator[RedisTokenCache]:
    """A cache under a prefix unique to this test, deleted afterwards."""
    store = RedisTokenCache(redis, prefix=f"tokengate-test:{uuid.uuid4().hex}:", max_ttl=60)
    yield store
    await store.clear()


async def test_round_trip(cache: RedisTokenCache) -> None:
    """Claims come back equal, stored under the token's hash and never under the token."""
    token_hash = hash_value("raw-token-value")
    token = claims(scope="read", sub="s", client_id="c", exp=int(time.time()) + 30)
    await cache.put(token_hash, token)
    found = await cache.get(token_hash)
    assert found is not None
    assert found.claims == token
    assert found.fresh_until <= time.time() + 30
    assert await cache.get(hash_value("other")) is None
    keys = [key async for key in cache.redis.scan_iter(match=cache.prefix + "*")]
    assert (cache.prefix + "t:" + token_hash).encode() in keys
    assert not any(b"raw-token-value" in key for key in keys)


async def test_ttl_never_beyond_exp(cache: RedisTokenCache) -> None:
    """RFC 7662 §4: the Redis TTL ends at `exp` when that is sooner than max_ttl."""
    await cache.put("h", claims(exp=int(time.time()) + 5))
    ttl_ms = await cache.redis.pttl(cache.prefix + "t:h")
    assert 0 < ttl_ms <= 5000


async def test_ttl_bounded_by_max_ttl_without_exp(cache: RedisTokenCache) -> None:
    """No exp → at most max_ttl."""
    await cache.put("h", claims())
    ttl_ms = await cache.redis.pttl(cache.prefix + "t:h")
    assert 59_000 < ttl_ms <= 60_000


async def test_expired_and_negative_answers(cache: RedisTokenCache, redis: Redis) -> None:
    """Expired answers are not stored; negative ones only when opted in."""
    await cache.put("expired", claims(exp=int(time.time()) - 1))
    await cache.put("inactive", INACTIVE)
    assert await cache.get("expired") is None
    assert await cache.get("inactive") is None
    negative = RedisTokenCache(redis, prefix=cache.prefix, negative_ttl=2)
    await negative.put("inactive", INACTIVE)
    found = await negative.get("inactive")
    assert found is not None
    assert not found.claims.active
    assert 0 < await redis.pttl(cache.prefix + "t:inactive") <= 2000


async def test_inactive_answer_replaces_positive(cache: RedisTokenCache) -> None:
    """A fresher inactive answer deletes the old positive entry."""
    await cache.put("h", claims())
    await cache.put("h", INACTIVE)
    assert await cache.get("h") is None


async def test_evict_by_hash_and_client(cache: RedisTokenCache) -> None:
    """Revocation events can drop one token or all of a client's tokens."""
    await cache.put("a1", claims(client_id="a"))
    await cache.put("a2", claims(client_id="a"))
    await cache.put("b1", claims(client_id="b"))
    assert await cache.evict_token_hash("b1") is True
    assert await cache.evict_token_hash("b1") is False
    assert await cache.evict_client("a") == 2
    assert await cache.evict_client("a") == 0
    for key in ("a1", "a2", "b1"):
        assert await cache.get(key) is None


async def test_ttl_cap_applies_to_stored_entries(cache: RedisTokenCache) -> None:
    """A cap of 0 makes stored entries stale at once."""
    await cache.put("h", claims())
    cache.set_ttl_cap(0)
    assert await cache.get("h") is None
    cache.set_ttl_cap(None)
    assert await cache.get("h") is not None


async def test_entry_count_is_bounded(redis: Redis) -> None:
    """Beyond max_entries, the soonest-expiring entries are dropped."""
    store = RedisTokenCache(redis, prefix=f"tokengate-test:{uuid.uuid4().hex}:", max_entries=3)
    try:
        now = int(time.time())
        for index in range(5):
            await store.put(f"h{index}", claims(exp=now + 10 + index))
        alive = [h for h in ("h0", "h1", "h2", "h3", "h4") if await store.get(h)]
        assert alive == ["h2", "h3", "h4"]
        assert await redis.zcard(store.prefix + "idx") == 3
    finally:
        await store.clear()


async def test_foreign_values_are_misses(cache: RedisTokenCache) -> None:
    """A value not written by us reads as a miss, not a crash."""
    await cache.redis.set(cache.prefix + "t:h", b"not json", px=10_000)
    assert await cache.get("h") is None


def _validator(introspector: StaticIntrospector, shared: RedisTokenCache) -> Validator:
    settings = ValidatorSettings("rs", "s", revocation_events=False)
    offline = FakeAuthorizationServer().transport()
    return Validator(settings, introspector=introspector, shared_cache=shared, transport=offline)


async def test_two_validators_share_one_introspection(cache: RedisTokenCache) -> None:
    """Two processes behind one Redis introspect a token once."""
    first, second = StaticIntrospector({"t": claims()}), StaticIntrospector({"t": claims()})
    one, two = _validator(first, cache), _validator(second, cache)
    await one.validate("t")
    await two.validate("t")
    assert (first.calls, second.calls) == (1, 0)
    assert await two.evict_token_hash(hash_value("t")) is True
    await one.validate("t")
    assert first.calls == 1  # still in its own memory cache
    one.cache.clear()
    await one.validate("t")
    assert first.calls == 2


async def test_from_url_takes_the_validator_bounds() -> None:
    """`from_url` bounds the shared cache like the validator's own memory cache."""
    settings = ValidatorSettings("rs", "s", max_ttl=42, negative_ttl=3)
    store = RedisTokenCache.from_url(REDIS_URL, settings, prefix="tokengate-test:url:")
    try:
        assert (store.max_ttl, store.negative_ttl, store.prefix) == (42, 3, "tokengate-test:url:")
    finally:
        await store.redis.aclose()


async def test_the_replay_store_refuses_a_proof_seen_by_another_replica(redis: Redis) -> None:
    """RFC 9449 §11.1: `SET NX PX` per proof; the key lives until the proof's window ends."""
    prefix = f"tokengate-test:{uuid.uuid4().hex}:"
    one, two = RedisReplayStore(redis, prefix=prefix), RedisReplayStore(redis, prefix=prefix)
    until = time.time() + 60
    assert await one.first_use("jkt:jti", until)
    assert not await two.first_use("jkt:jti", until)
    assert await two.first_use("jkt:other", until)
    ttl = await redis.pttl(f"{prefix}p:jkt:jti")
    assert 0 < ttl <= 60_000
    await redis.delete(f"{prefix}p:jkt:jti", f"{prefix}p:jkt:other")
